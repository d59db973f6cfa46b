"""The Garage tab: Owners apply to the program; every team member follows the application.

The view parses the form and calls one service (garage.services), which decides what the team
may do; the page shows the team's latest application in whichever state it is.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.decorators import team_member_required
from accounts.roles import Perm, role_can
from billing.selectors import current_state
from garage import services
from garage.forms import GarageApplicationForm
from garage.models import GarageApplication, ProgramDetails

Status = GarageApplication.Status
ACTIONS = {"save", "submit"}


@require_http_methods(["GET", "HEAD", "POST"])
@team_member_required()
def garage(request):
    """GET: the tab; POST `action=save|submit` (Owners): save the draft or submit the application."""
    if request.method == "POST":
        return _apply(request)
    return _render(request, _form_for_page(request))


def _apply(request):
    _require_owner(request)
    action = request.POST.get("action")
    if action not in ACTIONS:
        messages.error(request, "Choose Save draft or Submit application.")
        return redirect("garage")
    draft = _draft(request.team)
    reason = services.why_team_cannot_apply(request.team)
    if draft is None and reason:
        messages.error(request, reason)
        return redirect("garage")
    complete = action == "submit"
    instance = draft or GarageApplication(team=request.team)
    form = GarageApplicationForm(request.POST, instance=instance, complete=complete)
    if not form.is_valid():
        if complete:
            messages.error(request, "Your application is not submitted yet: complete the fields marked below.")
        return _render(request, form, status=200)
    try:
        if complete:
            application = services.submit(request.membership, form.cleaned_data)
        else:
            services.save_draft(request.membership, form.cleaned_data)
    except services.GarageError as error:
        messages.error(request, str(error))
        return redirect("garage")
    if complete:
        messages.success(
            request,
            f"Application submitted on {application.submitted_at:%-d %B %Y}. We emailed your team's Owners "
            "a confirmation; you can follow its status here.",
        )
    else:
        messages.success(request, "Draft saved. Submit it when every field is filled in.")
    return redirect("garage")


@require_http_methods(["GET", "HEAD", "POST"])
@team_member_required(Perm.MANAGE_BILLING)
def withdraw(request):
    """GET: what withdrawing means, with a confirm button; POST: withdraw the open application."""
    application = services.latest_application(request.team)
    if request.method == "POST":
        try:
            services.withdraw(request.membership)
        except services.GarageError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, "Application withdrawn. You can apply again whenever you are ready.")
        return redirect("garage")
    if application is None or application.status not in (Status.SUBMITTED, Status.UNDER_REVIEW):
        messages.info(request, "There is no open application to withdraw.")
        return redirect("garage")
    return render(request, "garage/withdraw.html", {"application": application})


def _render(request, form: GarageApplicationForm | None, status: int = 200):
    team = request.team
    application = services.latest_application(team)
    reason = services.why_team_cannot_apply(team)
    state = page_state(application, reason)
    context = {
        "application": application,
        "state": state,
        "reason": reason,
        "is_owner": role_can(request.membership.role, Perm.MANAGE_BILLING),
        "form": form if state == "apply" else None,
    }
    if state == "accepted":
        context.update(_grant_context(team, application))
    return render(request, "garage/garage.html", context, status=status)


def page_state(application: GarageApplication | None, reason: str | None) -> str:
    """Which of the tab's states to show: apply, open, accepted, rejected or closed."""
    status = application.status if application else None
    if status in (Status.SUBMITTED, Status.UNDER_REVIEW):
        return "open"
    if status == Status.ACCEPTED:
        return "accepted"
    if reason:
        return "rejected" if status == Status.REJECTED else "closed"
    return "apply"


def _grant_context(team, application: GarageApplication) -> dict:
    """The grant, and this period's state in the words and numbers the Billing tab shows (billing.state)."""
    grant, billing_state = application.grant, current_state(team)
    return {
        "grant": grant,
        # What the grant gives this team a period: never less than its plan's (billing.entitlements).
        "grant_terms": billing_state.grant_terms
        or {"request_allowance": grant.request_allowance, "vehicle_allowance": grant.vehicle_allowance},
        "billing_state": billing_state,
        "program": ProgramDetails.current(),
    }


def _form_for_page(request) -> GarageApplicationForm | None:
    if not role_can(request.membership.role, Perm.MANAGE_BILLING):
        return None
    # A draft is edited in place; after a withdrawal or rejection, the last answers are the starting point.
    application = services.latest_application(request.team) or GarageApplication(team=request.team)
    return GarageApplicationForm(instance=application)


def _draft(team) -> GarageApplication | None:
    return GarageApplication.objects.filter(team=team, status=Status.DRAFT).first()


def _require_owner(request) -> None:
    if not role_can(request.membership.role, Perm.MANAGE_BILLING):
        raise PermissionDenied("Only Owners apply to the Garage program.")
