from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from accounts.middleware import get_current_membership
from accounts.roles import role_can


def team_member_required(perm: str | None = None):
    """Logged in, member of a current team, and (optionally) holding `perm` in it.

    Gives the view the real Membership and Team rows in request.membership / request.team.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            membership = get_current_membership(request)
            if membership is None:
                return redirect("team_create")
            if perm and not role_can(membership.role, perm):
                raise PermissionDenied(f"Your role ({membership.get_role_display()}) cannot do this.")
            request.membership = membership
            request.team = membership.team
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
