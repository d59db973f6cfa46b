from django.utils.functional import SimpleLazyObject

from accounts.selectors import membership_for, memberships_for_user

SESSION_TEAM_KEY = "current_team_id"
_UNSET = object()


def get_current_membership(request):
    """The user's membership in the team chosen in their session (cached per request)."""
    cached = getattr(request, "_current_membership", _UNSET)
    if cached is not _UNSET:
        return cached
    membership = None
    user = request.user
    if user.is_authenticated:
        membership = membership_for(user, request.session.get(SESSION_TEAM_KEY))
        if membership is None:
            # No choice yet, or removed from the chosen team: fall back to the first team.
            membership = memberships_for_user(user).first()
            if membership is not None:
                request.session[SESSION_TEAM_KEY] = membership.team_id
    request._current_membership = membership
    return membership


class CurrentTeamMiddleware:
    """Sets request.membership (the user's role in the current team) and request.team, lazily."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = SimpleLazyObject(lambda: get_current_membership(request))
        request.team = SimpleLazyObject(lambda: getattr(get_current_membership(request), "team", None))
        return self.get_response(request)
