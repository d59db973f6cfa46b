"""The Garage program's lifecycle: applying (Owners), reviewing (staff), and the grant acceptance starts.

Every change happens under the application's row lock, is recorded as a GarageReviewEvent (and,
for the team's side, in the team's audit log), and decisions are emailed to the team's Owners.
Acceptance starts a billing grant (billing.grants), which makes the team's usage free up to the
grant's allowances until it ends; the grant ending marks the application expired.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import record_audit
from accounts.models import Membership, Team
from accounts.roles import Perm, role_can
from billing import grants
from billing.alerts import owner_emails
from billing.models import Contract, Grant
from garage.models import OPEN_STATUSES, GarageApplication, GarageReviewEvent
from notifications.outbox import queue_templated_email

APPLICANT_FIELDS = [
    "company_name",
    "website",
    "founded_on",
    "stage",
    "funding_raised_usd",
    "team_size",
    "app_description",
    "use_case",
    "expected_vehicles",
    "contact_name",
    "contact_email",
]
Status = GarageApplication.Status


class GarageError(Exception):
    """Why the change cannot be made; the message is shown as is."""


def latest_application(team: Team) -> GarageApplication | None:
    return GarageApplication.objects.filter(team=team).select_related("grant").first()


def why_team_cannot_apply(team: Team) -> str | None:
    """Why the team may not start an application now, or None if it may."""
    if Contract.objects.filter(team=team, status__in=[Contract.Status.SCHEDULED, Contract.Status.ACTIVE]).exists():
        return (
            "Your team has an Enterprise contract; "
            "the Garage program is for early-stage teams on Free or Pay-as-you-go."
        )
    had_grant = Grant.objects.filter(team=team, program="garage").order_by("-starts_at").first()
    if had_grant is not None:
        return (
            f"Your team already had a Garage grant ({had_grant.starts_at:%-d %B %Y} – {had_grant.ends_at:%-d %B %Y}); "
            "the program grants each team once."
        )
    if GarageApplication.objects.filter(team=team, status__in=OPEN_STATUSES).exclude(status=Status.DRAFT).exists():
        return "Your team's application is being reviewed; you can withdraw it while it is open."
    rejected = GarageApplication.objects.filter(team=team, status=Status.REJECTED).order_by("-decided_at").first()
    if rejected is not None and rejected.decided_at:
        again = rejected.decided_at + timedelta(days=settings.GARAGE_REAPPLY_AFTER_DAYS)
        if timezone.now() < again:
            return (
                f"Your application was not accepted on {rejected.decided_at:%-d %B %Y}; "
                f"you can apply again from {again:%-d %B %Y}."
            )
    return None


def save_draft(actor: Membership, data: dict) -> GarageApplication:
    """Create or update the team's draft with whatever the Owner has filled in so far."""
    _require_owner(actor)
    with transaction.atomic():
        application = _open_draft_for_update(actor)
        _fill(application, data)
        application.save()
    return application


def submit(actor: Membership, data: dict) -> GarageApplication:
    """Submit the application (the form has checked it is complete); the Owners get an acknowledgement."""
    _require_owner(actor)
    with transaction.atomic():
        application = _open_draft_for_update(actor)
        _fill(application, data)
        missing = [field for field in APPLICANT_FIELDS if getattr(application, field) in (None, "")]
        if missing:  # the form says which, field by field; this guards every other caller
            raise GarageError(f"The application is incomplete: {', '.join(missing)}.")
        application.status, application.submitted_at = Status.SUBMITTED, timezone.now()
        application.save()
        _event(application, actor.user, "submitted", Status.DRAFT)
        record_audit(team=actor.team, actor=actor.user, action="garage.submitted", target=application.company_name)
        _email_owners(application, "garage-submitted")
    return application


def withdraw(actor: Membership) -> GarageApplication:
    _require_owner(actor)
    with transaction.atomic():
        application = (
            GarageApplication.objects.select_for_update().filter(team=actor.team, status__in=OPEN_STATUSES).first()
        )
        if application is None:
            raise GarageError("There is no open application to withdraw.")
        before = application.status
        application.status = Status.WITHDRAWN
        application.save(update_fields=["status", "updated_at"])
        _event(application, actor.user, "withdrawn", before)
        record_audit(team=actor.team, actor=actor.user, action="garage.withdrawn", target=application.company_name)
    return application


# --- staff ------------------------------------------------------------------------------------------------------


def assign(application_id: int, *, reviewer, actor) -> GarageApplication:
    """Give the application to a reviewer; a submitted one is then under review."""
    with transaction.atomic():
        application = _for_review(application_id)
        before = application.status
        application.reviewer = reviewer
        if application.status == Status.SUBMITTED:
            application.status = Status.UNDER_REVIEW
        application.save(update_fields=["reviewer", "status", "updated_at"])
        _event(application, actor, "assigned", before, note=str(reviewer))
    return application


def add_note(application_id: int, *, note: str, actor) -> GarageApplication:
    note = note.strip()
    if not note:
        raise GarageError("Write the note first.")
    with transaction.atomic():
        application = GarageApplication.objects.select_for_update().get(pk=application_id)
        application.internal_notes = "\n\n".join(
            part for part in [application.internal_notes, f"{timezone.now():%Y-%m-%d} {actor}: {note}"] if part
        )
        application.save(update_fields=["internal_notes", "updated_at"])
        _event(application, actor, "note", application.status, note=note)
    return application


def accept(application_id: int, *, reviewer, request_allowance: int | None = None, note: str = "") -> GarageApplication:
    """Accept: start the team's grant now and tell the Owners."""
    with transaction.atomic():
        application = _for_review(application_id)
        before = application.status
        try:
            grant = grants.start_grant(team_id=application.team_id, actor=reviewer, request_allowance=request_allowance)
        except grants.GrantError as error:
            raise GarageError(str(error)) from error
        application.status, application.grant = Status.ACCEPTED, grant
        application.decided_at, application.decided_by = timezone.now(), reviewer
        application.reviewer = application.reviewer or reviewer
        application.save()
        _event(application, reviewer, "accepted", before, note=note)
        record_audit(team=application.team, actor=reviewer, action="garage.accepted", target=application.company_name)
        _email_owners(application, "garage-accepted")
    return application


def reject(application_id: int, *, reviewer, reason: str) -> GarageApplication:
    """Reject with a reason the team sees."""
    reason = reason.strip()
    if not reason:
        raise GarageError("Give the team a reason for the rejection.")
    with transaction.atomic():
        application = _for_review(application_id)
        before = application.status
        application.status, application.decision_reason = Status.REJECTED, reason
        application.decided_at, application.decided_by = timezone.now(), reviewer
        application.reviewer = application.reviewer or reviewer
        application.save()
        _event(application, reviewer, "rejected", before, note=reason)
        record_audit(team=application.team, actor=reviewer, action="garage.rejected", target=application.company_name)
        _email_owners(application, "garage-rejected")
    return application


def expire_for_ended_grants(grant_ids: list[int]) -> int:
    """Mark the accepted applications whose grant has ended as expired (idempotent); how many changed."""
    changed = 0
    for application in GarageApplication.objects.filter(grant_id__in=grant_ids, status=Status.ACCEPTED):
        with transaction.atomic():
            locked = GarageApplication.objects.select_for_update().get(pk=application.pk)
            if locked.status != Status.ACCEPTED:
                continue
            locked.status = Status.EXPIRED
            locked.save(update_fields=["status", "updated_at"])
            _event(locked, None, "expired", Status.ACCEPTED)
            changed += 1
    return changed


def end_due_grants_and_expire(now=None) -> int:
    """The beat task: end grants whose time is up, then mark their applications expired."""
    ended = grants.end_due_grants(now)
    expire_for_ended_grants(ended)
    # An earlier run may have ended grants and died before expiring their applications.
    stale = GarageApplication.objects.filter(status=Status.ACCEPTED, grant__status=Grant.Status.ENDED)
    expire_for_ended_grants(list(stale.values_list("grant_id", flat=True)))
    return len(ended)


# --- helpers ----------------------------------------------------------------------------------------------------


def _require_owner(actor: Membership) -> None:
    if not role_can(actor.role, Perm.MANAGE_BILLING):
        raise PermissionDenied("Only Owners apply to the Garage program.")


def _open_draft_for_update(actor: Membership) -> GarageApplication:
    """The team's draft, locked, created if the team may apply; GarageError otherwise."""
    reason = why_team_cannot_apply(actor.team)  # also for an existing draft: a grant may have come since
    if reason:
        raise GarageError(reason)
    draft = GarageApplication.objects.select_for_update().filter(team=actor.team, status=Status.DRAFT).first()
    if draft is not None:
        return draft
    try:
        with transaction.atomic():
            return GarageApplication.objects.create(team=actor.team, created_by=actor.user)
    except IntegrityError:  # another request created the team's open application a moment ago
        draft = GarageApplication.objects.select_for_update().filter(team=actor.team, status=Status.DRAFT).first()
        if draft is None:
            reason = why_team_cannot_apply(actor.team) or "Your team's application was just submitted."
            raise GarageError(reason) from None
        return draft


def _for_review(application_id: int) -> GarageApplication:
    application = GarageApplication.objects.select_for_update().get(pk=application_id)
    if application.status not in (Status.SUBMITTED, Status.UNDER_REVIEW):
        raise GarageError(f"This application is {application.get_status_display().lower()}: nothing to decide.")
    return application


def _fill(application: GarageApplication, data: dict) -> None:
    for field in APPLICANT_FIELDS:
        if field in data:
            setattr(application, field, data[field] if data[field] is not None else _empty(field))


def _empty(field: str):
    return None if GarageApplication._meta.get_field(field).null else ""


def _event(application: GarageApplication, actor, action: str, before: str, note: str = "") -> None:
    GarageReviewEvent.objects.create(
        application=application, actor=actor, action=action, before=before, after=application.status, note=note
    )


def _email_owners(application: GarageApplication, template: str) -> None:
    recipients = owner_emails(application.team_id)
    if recipients:
        context = {"application": application, "grant": application.grant}
        queue_templated_email(template, to=recipients, context=context)
