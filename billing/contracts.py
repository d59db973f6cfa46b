"""Enterprise contracts: creating them, switching a team to and from them, and invoice-paid terms.

Staff create a contract in the admin (`create_contract`): dates, allowances (empty = unlimited),
graduated or volume tiers, an optional monthly minimum, and payment by card or by invoice.

Moving to and from a contract mid-period **splits the period at the switch** (no pro-rating of
requests): from the moment a contract starts, the team's open period takes its allowances, its
billable requests are counted under the contract (UsageDaily.contract_key) and priced by its tiers
when the period closes; requests counted before keep the per-request price they were counted at.
When it ends, the period goes back to the plan the team had before (Free if that plan needs a
card and there is none). Only the monthly minimum is pro-rated: a contract owes it in proportion
to the share of the period it was in force (billing.rating.prorated_minimum).

A contract starts at its `starts_at` and ends at its `ends_at`: when a team's next period opens
(so a contract aligned with a period takes the whole period), by the beat task every minute, or
at once when staff create one that has started already or end one early. Each switch happens
under the subscription's row lock, as plan switches, grants and period rollovers do, once
(`status` moves forward only), and is recorded as a `contract` billing event and emailed.

Invoice-paid contracts: the period's invoice is not charged; it is due `net_days` after issue,
emailed with the payment instructions, marked past due (and emailed again) once overdue, and
marked paid by staff in the admin when the transfer arrives (billing.backoffice).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.audit import record_audit
from accounts.models import Team
from billing import dunning, entitlements, lifecycle, rating
from billing.alerts import owner_emails
from billing.models import (
    BillingEvent,
    BillingPeriod,
    Contract,
    ContractTier,
    Grant,
    Invoice,
    Plan,
    Subscription,
    UsageDaily,
)
from notifications.outbox import queue_templated_email

LIVE = (Contract.Status.SCHEDULED, Contract.Status.ACTIVE)


class ContractError(Exception):
    """Why a contract cannot be created or changed; the message is shown to staff."""


@dataclass(frozen=True)
class TierTerms:
    up_to: int | None
    unit_price_cents: Decimal


# --- creating ------------------------------------------------------------------------------------------------------


def priced_terms(pricing: str, tiers: list[TierTerms], minimum_cents: int) -> rating.Contract:
    """The tiers as billing.rating reads them; ContractError saying what is wrong with them."""
    ordered = sorted(tiers, key=lambda tier: (tier.up_to is None, tier.up_to or 0))
    if sum(tier.up_to is None for tier in ordered) != 1:
        raise ContractError("Give exactly one last tier with no upper bound (leave “up to” empty).")
    try:
        return rating.Contract(
            mode=pricing,
            tiers=tuple(rating.Tier(tier.up_to, tier.unit_price_cents) for tier in ordered),
            minimum_cents=minimum_cents,
        )
    except ValueError as error:
        raise ContractError(f"These tiers cannot price requests: {error}.") from error


def why_contract_cannot_start(
    team_id: int,
    *,
    starts_at: datetime,
    ends_at: datetime,
    paid_by: str,
    exclude_id: int | None = None,
    now: datetime | None = None,
) -> str | None:
    """What stands in the way of a contract for this team over these dates, or None."""
    if ends_at <= starts_at:
        return "The contract must end after it starts."
    if ends_at <= (now or timezone.now()):
        return "The contract's end has passed already; choose an end in the future."
    overlapping = (
        Contract.objects.filter(team_id=team_id, status__in=LIVE, starts_at__lt=ends_at, ends_at__gt=starts_at)
        .exclude(pk=exclude_id)
        .first()
    )
    if overlapping is not None:
        return (
            f"{overlapping.name} already covers {overlapping.starts_at:%-d %B %Y} – {overlapping.ends_at:%-d %B %Y}; "
            "end it first or choose dates after it."
        )
    if Grant.objects.filter(team_id=team_id, status=Grant.Status.ACTIVE).exists():
        return "This team has an active Garage grant; end the grant first (a team has a grant or a contract, not both)."
    if paid_by == Contract.PaidBy.CARD:
        subscription = lifecycle.subscription_for(team_id)
        if not subscription.card_on_file:
            return "This team has no card on file: choose payment by invoice, or ask an Owner to add a card first."
    return None


def create_contract(
    *,
    team_id: int,
    actor,
    starts_at: datetime,
    ends_at: datetime,
    pricing: str,
    tiers: list[TierTerms],
    request_allowance: int | None = None,
    vehicle_allowance: int | None = None,
    minimum_cents: int = 0,
    paid_by: str = Contract.PaidBy.INVOICE,
    net_days: int = 30,
    reference: str = "",
    now: datetime | None = None,
) -> Contract:
    """Record a contract and its tiers (started at once if its start has come); ContractError if refused."""
    now = now or timezone.now()
    priced_terms(pricing, tiers, minimum_cents)
    with transaction.atomic():
        lifecycle.subscription_for(team_id)
        lifecycle.locked_subscription(team_id)  # contracts of a team are created one at a time
        reason = why_contract_cannot_start(team_id, starts_at=starts_at, ends_at=ends_at, paid_by=paid_by, now=now)
        if reason:
            raise ContractError(reason)
        contract = Contract.objects.create(
            team_id=team_id,
            reference=reference,
            starts_at=starts_at,
            ends_at=ends_at,
            request_allowance=request_allowance,
            vehicle_allowance=vehicle_allowance,
            pricing=pricing,
            minimum_cents=minimum_cents,
            paid_by=paid_by,
            net_days=net_days,
            created_by=actor,
        )
        ContractTier.objects.bulk_create(
            ContractTier(contract=contract, up_to=tier.up_to, unit_price_cents=tier.unit_price_cents) for tier in tiers
        )
        record_created(contract, actor)
    if starts_at <= now:
        switch_contracts_of(team_id, now=now)
        contract.refresh_from_db()
    return contract


def record_created(contract: Contract, actor) -> None:
    """The audit trail of a new contract (the admin, which saves the rows itself, calls this too)."""
    details = described(contract)
    BillingEvent.objects.create(
        team_id=contract.team_id, actor=actor, kind=BillingEvent.Kind.CONTRACT, after={"action": "created", **details}
    )
    record_audit(team=contract.team, actor=actor, action="billing.contract_created", target=contract.name, **details)


# --- switching -----------------------------------------------------------------------------------------------------


def switch_due_contracts(now: datetime | None = None) -> list[int]:
    """The beat task: start and end every contract whose date has come; the teams switched."""
    now = now or timezone.now()
    due = Contract.objects.filter(
        Q(status=Contract.Status.SCHEDULED, starts_at__lte=now) | Q(status=Contract.Status.ACTIVE, ends_at__lte=now)
    )
    team_ids = sorted(set(due.values_list("team_id", flat=True)))
    return [team_id for team_id in team_ids if switch_contracts_of(team_id, now=now)]


def switch_contracts_of(team_id: int, *, now: datetime | None = None) -> bool:
    """Start or end the team's contracts that are due; False if none was (it ran already)."""
    now = now or timezone.now()
    before = _active_contract_id(team_id)
    # The period the switch happens in exists before its terms change (opening it may make the switch itself).
    lifecycle.current_period(team_id, now)
    with transaction.atomic():
        _switch(lifecycle.locked_subscription(team_id), now)
    return _active_contract_id(team_id) != before


def _active_contract_id(team_id: int) -> int | None:
    return Contract.objects.filter(team_id=team_id, status=Contract.Status.ACTIVE).values_list("pk", flat=True).first()


def switch_due_contract(subscription: Subscription, now: datetime, *, opening: datetime) -> Contract | None:
    """Under the subscription's row lock, as the team's period starting at `opening` is opened: end the
    contract past its end and start the one whose start has come; the contract in force afterwards.

    No request has been counted in the new period yet, so the switch is dated at the contract's own
    date or the period's start, whichever is later, not at `now`: a contract aligned with a period
    takes the whole period (and owes its whole minimum) however late the first request comes.
    """
    return _switch(subscription, now, opening=opening)


def _switch(subscription: Subscription, now: datetime, *, opening: datetime | None = None) -> Contract | None:
    """Switch what is due by `now`; the contract in force afterwards.

    Opening a period, see switch_due_contract. Otherwise (the beat, staff) a start is dated `now`
    (requests counted before it keep their terms) and an end at the contract's end date (so a late
    run never makes the minimum cover time past the contract's term).
    """

    def moment(date: datetime) -> datetime:
        return max(date, opening) if opening is not None else now

    renewing = None
    active = Contract.objects.filter(team_id=subscription.team_id, status=Contract.Status.ACTIVE).first()
    due = (
        Contract.objects.filter(
            team_id=subscription.team_id, status=Contract.Status.SCHEDULED, starts_at__lte=now, ends_at__gt=now
        )
        .order_by("starts_at")
        .first()
    )
    if active is not None and active.ends_at <= now:
        ended_at = active.ends_at if opening is None else max(active.ends_at, opening)
        # A renewal starting now: one email (about the new contract), and the team still goes back, in the end,
        # to the plan it had before the first contract.
        renewing = active.previous_plan if due is not None else None
        _end(active, subscription, ended_at, actor=None, reason="its end date came", email=due is None)
        active = None
    if active is None and due is not None:
        _start(due, subscription, moment(due.starts_at), previous_plan=renewing)
        active = due
    # A scheduled contract whose whole term passed before it could start never starts.
    for expired in Contract.objects.filter(
        team_id=subscription.team_id, status=Contract.Status.SCHEDULED, ends_at__lte=now
    ):
        expired.status, expired.ended_at = Contract.Status.CANCELED, now
        expired.save(update_fields=["status", "ended_at"])
        _log(expired, None, now, "canceled", reason="its whole term passed before it could start")
    return active


def end_contract(contract_id: int, *, actor, reason: str, now: datetime | None = None) -> Contract:
    """Staff end a contract early (or cancel one not started yet); ContractError if it is over already."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise ContractError("Say why: the reason is kept with the team's billing history.")
    team_id = Contract.objects.values_list("team_id", flat=True).get(pk=contract_id)
    lifecycle.current_period(team_id, now)
    with transaction.atomic():
        subscription = lifecycle.locked_subscription(team_id)
        contract = Contract.objects.select_for_update().get(pk=contract_id)
        if contract.status == Contract.Status.ACTIVE:
            _end(contract, subscription, now, actor=actor, reason=reason)
        elif contract.status == Contract.Status.SCHEDULED:
            contract.status, contract.ended_at = Contract.Status.CANCELED, now
            contract.save(update_fields=["status", "ended_at"])
            _log(contract, actor, now, "canceled", reason=reason)
        else:
            raise ContractError(f"{contract.name} is {contract.get_status_display().lower()} already.")
    return contract


def _start(contract: Contract, subscription: Subscription, now: datetime, *, previous_plan: Plan | None = None) -> None:
    enterprise = Plan.objects.get(code=Plan.ENTERPRISE)
    before = {"plan": subscription.plan.code, "pending_plan": getattr(subscription.pending_plan, "code", None)}
    contract.status, contract.started_at = Contract.Status.ACTIVE, now
    contract.previous_plan = previous_plan or _plan_before_contracts(subscription)
    contract.save(update_fields=["status", "started_at", "previous_plan"])
    # The contract sets the plan: a downgrade scheduled before it becomes the plan to go back to (above).
    subscription.plan, subscription.pending_plan, subscription.pending_at = enterprise, None, None
    subscription.save(update_fields=["plan", "pending_plan", "pending_at", "updated_at"])
    _apply_terms(subscription.team_id, enterprise, contract, now)
    _log(contract, None, now, "started", before=before)
    _email_owners("contract-started", contract)


def _end(contract: Contract, subscription: Subscription, now: datetime, *, actor, reason: str, email=True) -> None:
    fallback = contract.previous_plan or Plan.objects.get(code=Plan.FREE)
    if fallback.requires_card and not subscription.card_on_file:
        fallback = Plan.objects.get(code=Plan.FREE)
    contract.status, contract.ended_at = Contract.Status.ENDED, now
    contract.save(update_fields=["status", "ended_at"])
    subscription.plan, subscription.pending_plan, subscription.pending_at = fallback, None, None
    subscription.save(update_fields=["plan", "pending_plan", "pending_at", "updated_at"])
    _apply_terms(subscription.team_id, fallback, None, now)
    _log(contract, actor, now, "ended", reason=reason, plan=fallback.code)
    if email:
        _email_owners("contract-ended", contract, plan=fallback)


def _plan_before_contracts(subscription: Subscription) -> Plan:
    """The plan to go back to: the current one (or the one the Owner had scheduled a switch to), or, if the team is
    somehow on Enterprise already, the one before its last contract."""
    if subscription.plan.code != Plan.ENTERPRISE:
        return subscription.pending_plan or subscription.plan  # a downgrade the Owner scheduled is where they go
    last = (
        Contract.objects.filter(team_id=subscription.team_id, previous_plan__isnull=False)
        .exclude(status=Contract.Status.ACTIVE)
        .order_by("-ended_at")
        .first()
    )
    return last.previous_plan if last is not None else Plan.objects.get(code=Plan.FREE)


def _apply_terms(team_id: int, plan: Plan, contract: Contract | None, now: datetime) -> None:
    """Give the team's open periods from `now` on the terms of this plan or contract."""
    terms = entitlements.terms_for(plan, entitlements.active_grant(team_id, now), contract)
    BillingPeriod.objects.filter(team_id=team_id, status=BillingPeriod.Status.OPEN, end__gt=now).update(
        plan=plan, **terms
    )


def _log(contract: Contract, actor, now: datetime, action: str, **details) -> None:
    period = BillingPeriod.objects.filter(team_id=contract.team_id, start__lte=now, end__gt=now).first()
    BillingEvent.objects.create(
        team_id=contract.team_id,
        period=period,
        actor=actor,
        kind=BillingEvent.Kind.CONTRACT,
        after={"action": action, "contract": contract.pk, "reference": contract.reference, **details},
    )


def _email_owners(template: str, contract: Contract, **context) -> None:
    recipients = owner_emails(contract.team_id)
    if recipients:
        context = {"contract": contract, "tiers": tier_rows(contract), "sales_email": settings.SALES_EMAIL, **context}
        queue_templated_email(template, to=recipients, context=context)


# --- reading -------------------------------------------------------------------------------------------------------


def described(contract: Contract) -> dict:
    """The contract's terms as plain values (the audit log, the emails)."""
    return {
        "contract": contract.pk,
        "reference": contract.reference,
        "starts_at": contract.starts_at.isoformat(),
        "ends_at": contract.ends_at.isoformat(),
        "request_allowance": contract.request_allowance,
        "vehicle_allowance": contract.vehicle_allowance,
        "pricing": contract.pricing,
        "tiers": [[tier.up_to, str(tier.unit_price_cents)] for tier in contract.tiers.all()],
        "minimum_cents": contract.minimum_cents,
        "paid_by": contract.paid_by,
        "net_days": contract.net_days,
    }


@dataclass(frozen=True)
class TierRow:
    first: int  # the first request of the tier (1-based)
    up_to: int | None
    unit_price_cents: Decimal
    current: bool = False


def tier_rows(contract: Contract, used: int | None = None) -> list[TierRow]:
    """The tiers as people read them (“10,001 – 100,000 at 9¢”), the one `used` requests reached marked."""
    tiers = list(contract.tiers.all())
    current = rating.current_tier(contract.priced(tiers), used) if used is not None and tiers else None
    rows, floor = [], 0
    for index, tier in enumerate(tiers):
        rows.append(TierRow(floor + 1, tier.up_to, tier.unit_price_cents, current == index))
        floor = tier.up_to or floor
    return rows


def contract_usage(period: BillingPeriod, *, until: datetime | None = None) -> list[rating.ContractUsage]:
    """Each contract's requests in the period and the minimum it owes for its share of the period.

    `until`: the minimum's share up to then (an estimate of an open period); the period's end at close.
    """
    quantities = dict(
        UsageDaily.objects.filter(period=period, contract_key__gt=0, billable__gt=0)
        .values("contract_key")
        .annotate(quantity=Sum("billable"))
        .values_list("contract_key", "quantity")
    )
    contracts = list(
        Contract.objects.filter(Q(pk__in=quantities) | _in_force_during(period))
        .filter(started_at__isnull=False)
        .prefetch_related("tiers")
        .order_by("started_at", "pk")
    )
    end = min(until or period.end, period.end)
    parts = []
    for contract in contracts:
        covered = min(contract.ended_at or end, end) - max(contract.started_at, period.start)
        minimum = rating.prorated_minimum(contract.minimum_cents, covered, period.end - period.start)
        label = contract.name if len(contracts) > 1 else ""
        parts.append(rating.ContractUsage(contract.priced(), quantities.get(contract.pk, 0), minimum, label))
    return parts


def last_in_force_during(period: BillingPeriod) -> Contract | None:
    """The last contract that was in force at some point of the period (its terms say how the invoice is paid)."""
    return Contract.objects.filter(_in_force_during(period)).order_by("-started_at", "-pk").first()


def _in_force_during(period: BillingPeriod) -> Q:
    return Q(team_id=period.team_id, started_at__lt=period.end) & (
        Q(ended_at__isnull=True) | Q(ended_at__gt=period.start)
    )


def collection_terms(period: BillingPeriod, issued_at: datetime) -> tuple[str, datetime | None]:
    """How the period's invoice is paid: by the terms of the last contract in force in it."""
    last = last_in_force_during(period)
    if last is None or last.paid_by == Contract.PaidBy.CARD:
        return Contract.PaidBy.CARD, None
    return Contract.PaidBy.INVOICE, issued_at + timedelta(days=last.net_days)


# --- invoice terms -------------------------------------------------------------------------------------------------


def send_invoice_issued(invoice: Invoice) -> None:
    """Email an invoice-paid invoice to the Owners (and the billing email) with its due date and how to pay."""
    recipients = _invoice_recipients(invoice.team_id)
    if recipients:
        context = {"invoice": invoice, "instructions": settings.INVOICE_PAYMENT_INSTRUCTIONS}
        queue_templated_email("invoice-issued", to=recipients, context=context)


def mark_overdue_invoices(now: datetime | None = None) -> list[int]:
    """Invoice-paid invoices past their due date become past due (once each), with an email; their ids."""
    now = now or timezone.now()
    overdue = []
    due = Invoice.objects.filter(
        collection=Contract.PaidBy.INVOICE, status=Invoice.Status.OPEN, due_at__lte=now
    ).values_list("pk", flat=True)
    for invoice_id in list(due):
        with transaction.atomic():
            invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
            if invoice.status != Invoice.Status.OPEN:
                continue  # paid or voided by staff meanwhile
            invoice.status = Invoice.Status.PAST_DUE
            invoice.save(update_fields=["status"])
            dunning.mark_past_due(invoice.team_id)
            BillingEvent.objects.create(
                team_id=invoice.team_id,
                period_id=invoice.period_id,
                kind=BillingEvent.Kind.INVOICE,
                after={"invoice": invoice.number, "action": "overdue", "due_at": invoice.due_at.isoformat()},
            )
            recipients = _invoice_recipients(invoice.team_id)
            if recipients:
                context = {"invoice": invoice, "instructions": settings.INVOICE_PAYMENT_INSTRUCTIONS}
                queue_templated_email("invoice-overdue", to=recipients, context=context)
            overdue.append(invoice_id)
    return overdue


def _invoice_recipients(team_id: int) -> list[str]:
    recipients = owner_emails(team_id)
    team = Team.objects.filter(pk=team_id).select_related("billing_details").first()
    details = getattr(team, "billing_details", None)
    if details is not None and details.billing_email and details.billing_email not in recipients:
        recipients.append(details.billing_email)
    return recipients
