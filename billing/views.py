"""The Billing tab (Owners only): a period's usage, the plans, and switching between them.

Every number comes from billing.selectors (the period's counters and the UsageDaily rollups), so
the tab costs a fixed number of queries whatever the volume.
"""

from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.decorators import team_member_required
from accounts.roles import Perm
from billing import carrying, entitlements, selectors, services, state
from billing.charts import daily_chart
from billing.forms import PeriodForm, PlanChoiceForm, last_day, period_key
from billing.models import BillingEvent, Invoice, Plan, Subscription, UsageAlert

BREAKDOWN_ROWS = 10  # per table; the CSV export has them all
HISTORY_ROWS = 15
INVOICE_ROWS = 24
USAGE_CSV_URL = "/api/v1/billing/usage.csv"


@dataclass(frozen=True)
class PlanOption:
    """A plan as the comparison table offers it to this team."""

    plan: Plan
    # "current", "upgrade", "downgrade", "scheduled" (the pending switch), "contact" (sales) or "contract" (the
    # team's Enterprise contract sets its plan: no switching, services.switch_plan refuses it)
    action: str
    needs_card: bool = False


def plan_option(plan: Plan, subscription: Subscription, *, under_contract: bool = False) -> PlanOption:
    if plan.pk == subscription.plan_id:
        return PlanOption(plan, "current")
    if under_contract:
        return PlanOption(plan, "contract")
    if not plan.self_serve:
        return PlanOption(plan, "contact")
    if plan.pk == subscription.pending_plan_id:
        return PlanOption(plan, "scheduled")
    if plan.sort_order > subscription.plan.sort_order:  # the rule services.switch_plan applies
        return PlanOption(plan, "upgrade", needs_card=plan.requires_card and not subscription.card_on_file)
    return PlanOption(plan, "downgrade")


@team_member_required(Perm.MANAGE_BILLING)
def billing_overview(request):
    team, now = request.team, timezone.now()
    periods, current = selectors.periods_and_current(team, now)
    subscription = selectors.current_subscription(team)
    contract = selectors.live_contract(team)
    grant = entitlements.active_grant(team.pk, now) if contract is None else None  # a team has one or neither
    current_state = state.billing_state(current, now=now, subscription=subscription, grant=grant)
    picker = {"periods": periods, "current": current, "current_note": current_state.picker_note}
    if "period" in request.GET:
        form = PeriodForm(request.GET, **picker)
        if not form.is_valid():
            raise Http404("This team has no billing period starting on that day.")
        period = form.cleaned_data["period"]
    else:
        form = PeriodForm(initial={"period": period_key(current)}, **picker)
        period = current
    plans = list(selectors.public_plans())
    shown_state = current_state if period.pk == current.pk else state.billing_state(period, now=now)
    context = {
        "subscription": subscription,
        "contract_summary": selectors.contract_summary(team, current, now, contract=contract, subscription=subscription)
        if contract
        else None,
        "period_form": form,
        "has_past_periods": len(periods) > 1,
        "plans": [plan_option(plan, subscription, under_contract=contract is not None) for plan in plans],
        "history": _history(selectors.billing_history(team, limit=HISTORY_ROWS), plans),
        **_invoices(team),
        "sales_email": settings.SALES_EMAIL,
        "current_state": current_state,
        **_period_context(shown_state),
    }
    return render(request, "billing/billing.html", context)


def _invoices(team) -> dict:
    """The latest invoices (one query), each marked if it awaits a bank transfer (shown with its due date), and
    how to pay those by transfer if any does."""
    invoices = list(Invoice.objects.filter(team=team).select_related("period", "carried_to")[:INVOICE_ROWS])
    instructions = ""
    for invoice in invoices:
        invoice.awaits_transfer = selectors.awaits_transfer(invoice)
        instructions = instructions or selectors.payment_instructions(invoice)
    return {
        "invoices": invoices,
        "transfer_instructions": instructions,
        # Only the latest invoice can be waiting (the next one issued takes it): no query of its own.
        "carried_forward_cents": sum(
            invoice.total_cents
            for invoice in invoices
            if invoice.status == Invoice.Status.CARRIED and invoice.carried_to_id is None
        ),
        "minimum_charge_cents": carrying.minimum_charge_cents(),
    }


def _period_context(period_state: state.BillingState) -> dict:
    period = period_state.period
    summary = selectors.usage_summary(period_state)  # the numbers /api/v1/billing/usage answers too
    days = [(date.fromisoformat(d["date"]), d["billable"], d["non_billable"]) for d in summary["daily"]]
    chart = daily_chart(days, slots=(last_day(period) - period.start.date()).days + 1)
    has_usage = bool(period.requests_used or chart.total_billable or chart.total_non_billable)
    context = {
        "period": period,
        "period_state": period_state,
        "period_last_day": last_day(period),
        "is_current": period_state.is_current,
        "accrued_cents": summary["accrued_cents"],
        "projected_cents": summary["projected_cents"],
        "chart": chart,
        "has_usage": has_usage,
        "csv_url": f"{USAGE_CSV_URL}?period={period_key(period)}",
        # The Logs tab, narrowed to this period: each figure below links to the requests behind it.
        "logs_query": f"{reverse('log_list')}?period={period_key(period)}",
    }
    if has_usage:  # a new team's empty state needs none of these
        for name, rows in [
            ("by_application", selectors.usage_by_application(period)),
            ("by_endpoint", selectors.usage_by_endpoint(period)),
            ("by_vehicle", selectors.usage_by_vehicle(period)),
        ]:
            context[name] = rows[:BREAKDOWN_ROWS]
            context[f"{name}_more"] = max(len(rows) - BREAKDOWN_ROWS, 0)
    return context


def _history(events: list[BillingEvent], plans: list[Plan]) -> list[dict]:
    names = {plan.code: plan.name for plan in plans}
    return [{"event": event, "text": describe_event(event, names)} for event in events]


def describe_event(event: BillingEvent, plan_names: dict[str, str]) -> str:
    """One line for the billing history, from the event's before/after snapshots."""
    before, after, kind = event.before or {}, event.after or {}, event.kind

    def name(code):
        return plan_names.get(code, code or "no plan")

    if kind == BillingEvent.Kind.PLAN_CHANGED:
        return f"Plan changed from {name(before.get('plan'))} to {name(after.get('plan'))}"
    if kind == BillingEvent.Kind.PLAN_CHANGE_SCHEDULED:
        when = after.get("pending_at", "")[:10]
        return f"Switch to {name(after.get('pending_plan'))} scheduled" + (f" for {_day(when)}" if when else "")
    if kind == BillingEvent.Kind.PLAN_CHANGE_CANCELED:
        return f"Scheduled switch to {name(before.get('pending_plan'))} canceled"
    if kind == BillingEvent.Kind.LIMIT_REACHED:
        limit = after.get("limit")
        label = UsageAlert.Kind(limit).label if limit in UsageAlert.Kind.values else limit
        return f"Limit reached: {label}"
    if kind == BillingEvent.Kind.PERIOD_OPENED:
        return f"Period opened on {name(after.get('plan'))}"
    return event.get_kind_display()


def _day(iso_date: str) -> str:
    try:
        return f"{date.fromisoformat(iso_date):%-d %B %Y}"
    except ValueError:
        return iso_date


@require_http_methods(["GET", "POST"])
@team_member_required(Perm.MANAGE_BILLING)
def plan_switch(request):
    """GET `?plan=<code>`: what switching to that plan means, with a confirm button; POST `plan`: switch."""
    form = PlanChoiceForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        raise Http404("No such plan.")
    plan = form.cleaned_data["plan"]
    if request.method == "POST":
        return _switch(request, plan)
    subscription = selectors.current_subscription(request.team)
    option = plan_option(plan, subscription, under_contract=selectors.live_contract(request.team) is not None)
    if option.action == "current":
        messages.info(request, f"You are on {plan.name} already.")
        return redirect("billing")
    if option.action == "contract":
        messages.error(request, services.CONTRACT_SETS_PLAN)
        return redirect("billing")
    context = {
        "option": option,
        "plan": plan,
        "subscription": subscription,
        "period": selectors.open_period(request.team),
        "sales_email": settings.SALES_EMAIL,
    }
    return render(request, "billing/plan_switch.html", context)


def _switch(request, plan: Plan):
    try:
        subscription = services.switch_plan(actor=request.membership, plan_code=plan.code)
    except services.PlanChangeError as error:
        messages.error(request, str(error))
        return redirect("billing")
    if subscription.plan_id == plan.pk:
        messages.success(
            request,
            f"You're on {plan.name} now: {_amount(plan.request_allowance)} billable requests and "
            f"{_amount(plan.vehicle_allowance)} active vehicles for the rest of this period.",
        )
    else:
        messages.success(
            request,
            f"Switches to {plan.name} on {subscription.pending_at:%-d %B %Y}. You can cancel the switch until then.",
        )
    return redirect("billing")


def _amount(allowance: int | None) -> str:
    return "unlimited" if allowance is None else f"{allowance:,}"


@require_POST
@team_member_required(Perm.MANAGE_BILLING)
def plan_change_cancel(request):
    try:
        subscription = services.cancel_plan_change(actor=request.membership)
    except services.PlanChangeError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Scheduled switch canceled: you stay on {subscription.plan.name}.")
    return redirect("billing")
