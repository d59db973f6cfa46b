from accounts.middleware import get_current_membership
from accounts.roles import Perm, role_can
from accounts.selectors import memberships_for_user


def current_team(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    membership = get_current_membership(request)
    role = membership.role if membership else None
    return {
        "current_membership": membership,
        "current_team": membership.team if membership else None,
        "user_memberships": memberships_for_user(user),
        "can": {perm.value: role_can(role, perm) for perm in Perm} if role else {},
    }
