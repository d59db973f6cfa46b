from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from accounts import selectors
from accounts.decorators import team_member_required
from accounts.roles import Perm, role_can
from billing import selectors as billing_selectors
from billing.selectors import accrued_cents, current_state
from vehicles import selectors as vehicle_selectors


def home(request):
    if request.user.is_authenticated:
        return redirect("overview")
    return redirect("account_login")


@team_member_required()
def overview(request):
    team = request.team
    applications = list(selectors.team_applications(team)[:5])
    context = {
        "applications": applications,
        "application_count": selectors.team_applications(team).count(),
        "member_count": selectors.team_members(team).count(),
        "has_redirect_uri": selectors.team_has_redirect_uri(team),
        "has_called_api": vehicle_selectors.team_has_called_the_api(team),
        "invitations_waiting": list(selectors.invitations_waiting_for(request.user)),
        "has_chosen_plan": billing_selectors.team_has_chosen_a_plan(team),
        "audit_events": selectors.recent_audit_events(team, limit=8)
        if role_can(request.membership.role, Perm.VIEW_AUDIT_LOG)
        else None,
        # Billing numbers are for Owners only; other roles see no usage card.
        "usage_state": current_state(team) if role_can(request.membership.role, Perm.MANAGE_BILLING) else None,
    }
    if context["usage_state"] is not None:
        context["usage_accrued_cents"] = accrued_cents(context["usage_state"].period)
    return render(request, "dashboard/overview.html", context)


@login_required
def admin_mfa_required(request):
    return render(request, "dashboard/admin_mfa_required.html", status=403)


@never_cache
def healthz(request):
    """Liveness and database reachability, for load balancers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
