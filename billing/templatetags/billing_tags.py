"""Money formatting, plan wording and the dashboard's usage banner."""

from decimal import Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.roles import Perm, role_can
from billing import refunds, refusals
from billing.alerts import alert_threshold
from billing.forms import last_day
from billing.models import BillingPeriod, Invoice, Subscription, UsageAlert

ALERTS = (UsageAlert.Kind.REQUESTS_80, UsageAlert.Kind.REQUESTS_100, UsageAlert.Kind.VEHICLES_100)

register = template.Library()


@register.filter
def cents(value) -> str:
    """Integer cents as dollars: 1234 → "$12.34", 123456 → "$1,234.56"."""
    if value is None or value == "":
        return ""
    value = int(value)
    dollars, rest = divmod(abs(value), 100)
    return f"{'-' if value < 0 else ''}${dollars:,}.{rest:02d}"


@register.filter
def dispute_label(invoice: Invoice) -> str:
    """ "Disputed" while the cardholder's dispute is open, its outcome once closed; "" without one."""
    return refunds.dispute_label(invoice)


@register.filter
def stripe_words(value: str) -> str:
    """One of Stripe's codes in words: "product_not_received" → "product not received"."""
    return (value or "").replace("_", " ")


@register.filter
def unit_cents(value) -> str:
    """A per-request price in cents, fractions kept: Decimal("12.0000") → "12¢", Decimal("0.5000") → "0.5¢"."""
    if value is None or value == "":
        return ""
    text = f"{Decimal(value).normalize():f}"
    return f"{text}¢"


@register.filter
def allowance(value) -> str:
    """An allowance for people: None (no limit) reads "Unlimited"."""
    return "Unlimited" if value is None else intcomma(value)


register.filter("last_day", last_day)  # a period's last day (its end is the exclusive midnight after it)


@register.filter
def support_channels(channels) -> str:
    """["phone", "chat", "email"] → "Phone, chat and email"."""
    names = [str(channel) for channel in channels or []]
    if not names:
        return "—"
    text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return text[:1].upper() + text[1:]


@register.inclusion_tag("billing/_usage_banner.html", takes_context=True)
def usage_banner(context) -> dict:
    """Owners see the current period's usage alerts that still hold; one query for them, none for anyone else."""
    membership = context.get("current_membership")  # set by accounts' context processor for signed-in users
    if membership is None or not role_can(membership.role, Perm.MANAGE_BILLING):
        return {"banners": []}
    request = context.get("request")
    on_billing_tab = getattr(getattr(request, "resolver_match", None), "url_name", None) == "billing"
    banners = account_banners(membership.team_id) + usage_banners(membership.team_id)
    return {"banners": banners, "link_to_billing": not on_billing_tab}


def account_banners(team_id: int) -> list[dict]:
    """A past-due payment or a suspension, with the invoice to pay (one query; two when there is one)."""
    status = Subscription.objects.filter(team_id=team_id).values_list("status", flat=True).first()
    if status not in (Subscription.Status.SUSPENDED, Subscription.Status.PAST_DUE):
        return []
    invoice = Invoice.objects.filter(team_id=team_id, status=Invoice.Status.PAST_DUE).order_by("issued_at").first()
    if status == Subscription.Status.SUSPENDED:
        return [{"level": "error", "kind": "suspended", "refusal": refusals.suspended(), "invoice": invoice}]
    return [{"level": "warning", "kind": "past_due", "invoice": invoice}]


def usage_banners(team_id: int, now=None) -> list[dict]:
    """The team's period holding now: closed early, or its usage alerts whose condition still holds (an upgrade
    lifts a 100% alert). One query; the words are billing.refusals', as on the Billing tab and the API's 430s."""
    now = now or timezone.now()
    period = (
        BillingPeriod.objects.filter(team_id=team_id, start__lte=now, end__gt=now)
        .annotate(**{kind: Exists(UsageAlert.objects.filter(period=OuterRef("pk"), kind=kind)) for kind in ALERTS})
        .first()
    )
    if period is None:
        return []
    if period.status != BillingPeriod.Status.OPEN:
        return [{"level": "error", "kind": "closed_early", "refusal": refusals.closed_early(period.end)}]
    banners = []
    used, limit = period.requests_used, period.request_allowance
    if limit and (period.requests_100 or period.requests_80):
        if used >= limit:
            refusal = refusals.request_limit(limit, period.end)
            banners.append({"level": "error", "kind": "requests_100", "refusal": refusal})
        elif used >= alert_threshold(limit):
            banners.append({"level": "warning", "kind": "requests_80", "period": period})
    active, vehicles = period.vehicles_active, period.vehicle_allowance
    if period.vehicles_100 and vehicles and active >= vehicles:
        refusal = refusals.vehicle_limit(vehicles, period.end)
        banners.append({"level": "error", "kind": "vehicles_100", "refusal": refusal})
    return banners
