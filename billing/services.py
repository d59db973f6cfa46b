"""Plan switching and period upkeep: the billing rules that are not on the API's hot path.

Switching up (Free → Pay-as-you-go) takes effect at once: the open period's allowances rise to
the new plan's for the rest of the period and later billable requests are priced at the new
plan's rate, while those already made keep the price they were counted at (each UsageEvent
stores it). Switching down is scheduled for the end of the period and can be canceled until then.
Enterprise is set up by staff. Only Owners switch; every switch is audited and emailed.
"""

from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from accounts.audit import record_audit
from accounts.models import Membership, Team
from accounts.roles import Perm, role_can
from billing import entitlements
from billing.alerts import owner_emails
from billing.lifecycle import current_period, subscription_for
from billing.models import BillingEvent, BillingPeriod, Contract, Plan, Subscription
from notifications.outbox import queue_templated_email


class PlanChangeError(Exception):
    """A switch the rules refuse; the message is shown to the developer."""


CARD_REQUIRED = "Pay-as-you-go needs a credit card on file. Add a card, then upgrade."
CONTRACT_SETS_PLAN = (
    "Your team's plan is set by its Enterprise contract. "
    "To change it, use Contact sales or write to your account manager."
)
LIVE_CONTRACT = (Contract.Status.SCHEDULED, Contract.Status.ACTIVE)


def open_due_periods(now: datetime | None = None) -> int:
    """Open the current period of every team that has none yet (the beat task; requests also open them)."""
    now = now or timezone.now()
    covered = BillingPeriod.objects.filter(start__lte=now, end__gt=now).values("team_id")
    opened = 0
    for team_id in Team.objects.exclude(pk__in=covered).values_list("pk", flat=True).iterator():
        current_period(team_id, now)
        opened += 1
    return opened


def _lock(actor: Membership) -> tuple[Subscription, BillingPeriod]:
    """The actor's team subscription and open period, locked in that order (as metering's reservations do)."""
    if not role_can(actor.role, Perm.MANAGE_BILLING):
        raise PermissionDenied("Only Owners can change the plan.")
    subscription_for(actor.team_id)
    period = current_period(actor.team_id)
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan", "pending_plan")
        .get(team_id=actor.team_id)
    )
    period = BillingPeriod.objects.select_for_update().get(pk=period.pk)
    return subscription, period


def switch_plan(*, actor: Membership, plan_code: str) -> Subscription:
    """Move the team to `plan_code`: at once if it is an upgrade, at the period's end if a downgrade."""
    with transaction.atomic():
        subscription, period = _lock(actor)
        if Contract.objects.filter(team_id=actor.team_id, status__in=LIVE_CONTRACT).exists():
            raise PlanChangeError(CONTRACT_SETS_PLAN)
        target = Plan.objects.filter(code=plan_code).first()
        if target is None or not target.self_serve:
            raise PlanChangeError("That plan is set up with our sales team: use Contact sales.")
        current = subscription.plan
        if target == current:
            if subscription.pending_plan_id:
                raise PlanChangeError(f"You are on {current.name} already; cancel the scheduled switch instead.")
            raise PlanChangeError(f"You are on {current.name} already.")
        if target.sort_order > current.sort_order:
            _upgrade(actor, subscription, period, target)
            template = "plan-upgraded"
        else:
            _schedule_downgrade(actor, subscription, period, target)
            template = "plan-change-scheduled"
        _email_owners(template, subscription, period)
    return subscription


def _upgrade(actor: Membership, subscription: Subscription, period: BillingPeriod, target: Plan) -> None:
    if target.requires_card and not subscription.card_on_file:
        raise PlanChangeError(CARD_REQUIRED)
    before = {"plan": subscription.plan.code, **_entitlements(period)}
    subscription.plan, subscription.pending_plan, subscription.pending_at = target, None, None
    subscription.save(update_fields=["plan", "pending_plan", "pending_at", "updated_at"])
    terms = entitlements.terms_for(target, entitlements.active_grant(period.team_id, timezone.now()))  # a grant stays
    if period.status == BillingPeriod.Status.OPEN:  # one closed early (time travel) keeps the terms it was invoiced on
        period.plan = target
        for field, value in terms.items():
            setattr(period, field, value)
        period.save(update_fields=["plan", *terms])
    # A next period opened a moment ago (the rollover racing this switch) takes the new plan too.
    BillingPeriod.objects.filter(
        team_id=period.team_id, start__gt=period.start, status=BillingPeriod.Status.OPEN
    ).update(plan=target, **terms)
    after = {"plan": target.code, **_entitlements(period)}
    _log(actor, period, BillingEvent.Kind.PLAN_CHANGED, before, after, "billing.plan_changed")


def _schedule_downgrade(actor: Membership, subscription: Subscription, period: BillingPeriod, target: Plan) -> None:
    if subscription.pending_plan_id == target.pk:
        raise PlanChangeError(f"The switch to {target.name} is already scheduled for {period.end:%-d %B %Y}.")
    before = {"plan": subscription.plan.code, "pending_plan": getattr(subscription.pending_plan, "code", None)}
    subscription.pending_plan, subscription.pending_at = target, period.end
    subscription.save(update_fields=["pending_plan", "pending_at", "updated_at"])
    after = {"plan": subscription.plan.code, "pending_plan": target.code, "pending_at": period.end.isoformat()}
    _log(actor, period, BillingEvent.Kind.PLAN_CHANGE_SCHEDULED, before, after, "billing.plan_change_scheduled")


def cancel_plan_change(*, actor: Membership) -> Subscription:
    """Keep the current plan: drop the switch scheduled for the period's end."""
    with transaction.atomic():
        subscription, period = _lock(actor)
        if subscription.pending_plan_id is None:
            raise PlanChangeError("There is no scheduled plan change to cancel.")
        before = {"plan": subscription.plan.code, "pending_plan": subscription.pending_plan.code}
        subscription.pending_plan, subscription.pending_at = None, None
        subscription.save(update_fields=["pending_plan", "pending_at", "updated_at"])
        after = {"plan": subscription.plan.code, "pending_plan": None}
        _log(actor, period, BillingEvent.Kind.PLAN_CHANGE_CANCELED, before, after, "billing.plan_change_canceled")
        _email_owners("plan-change-canceled", subscription, period)
    return subscription


def _entitlements(period: BillingPeriod) -> dict:
    return {
        "request_allowance": period.request_allowance,
        "vehicle_allowance": period.vehicle_allowance,
        "unit_price_cents": period.unit_price_cents,
    }


def _log(actor: Membership, period: BillingPeriod, kind: str, before: dict, after: dict, action: str) -> None:
    BillingEvent.objects.create(
        team_id=actor.team_id, period=period, actor=actor.user, kind=kind, before=before, after=after
    )
    record_audit(team=actor.team, actor=actor.user, action=action, target=after.get("plan", ""), **after)


def _email_owners(template: str, subscription: Subscription, period: BillingPeriod) -> None:
    recipients = owner_emails(subscription.team_id)
    if not recipients:
        return
    context = {"subscription": subscription, "period": period, "team": subscription.team}
    queue_templated_email(template, to=recipients, context=context)
