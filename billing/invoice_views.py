"""Invoices in the Billing tab (Owners only): an invoice's page, its PDF, and the team's billing details.

An invoice is named in URLs by its public UUID and looked up within the current team only, so
another team's id answers 404 exactly like one that does not exist (whatever the method).
"""

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from accounts.audit import record_audit
from accounts.decorators import team_member_required
from accounts.roles import Perm
from billing import carrying, selectors
from billing.forms import BillingDetailsForm, last_day, period_key
from billing.invoice_pdf import line_unit_price, render_invoice_pdf
from billing.models import BillingDetails, Invoice

DETAIL_FIELDS = ["company_name", "address", "tax_id", "billing_email"]


def team_invoice(request, invoice_id) -> Invoice:
    """The current team's invoice with that public id (and its period), or 404."""
    return get_object_or_404(Invoice.objects.select_related("period"), team=request.team, public_id=invoice_id)


def team_billing_details(team) -> BillingDetails | None:
    return BillingDetails.objects.filter(team=team).first()


@team_member_required(Perm.MANAGE_BILLING)
def invoice_detail(request, invoice_id):
    invoice = team_invoice(request, invoice_id)  # before the method check: a foreign id is 404 for any method
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    lines = list(invoice.lines.all())
    requests_url = f"{reverse('log_list')}?period={period_key(invoice.period)}&billable=yes"
    for line in lines:
        line.unit_price_text = line_unit_price(line)  # fractions of a cent shown, as on the PDF
        line.requests_url = _requests_behind(line, requests_url)
    context = {
        "invoice": invoice,
        "requests_url": requests_url,
        "log_retention_days": settings.REQUEST_LOG_RETENTION_DAYS,
        "period_last_day": last_day(invoice.period),
        "lines": lines,
        "details": team_billing_details(request.team),
        "instructions": selectors.payment_instructions(invoice),  # "" unless it awaits a bank transfer
        "minimum_charge_cents": carrying.minimum_charge_cents(),
    }
    return render(request, "billing/invoice.html", context)


def _requests_behind(line, period_requests_url: str) -> str | None:
    """The Logs tab's list of the requests an invoice line counts: a per-request line's family at its price, a
    contract's usage lines all of the period's billable requests; None for minimums, credits and carried amounts."""
    if line.kind != "usage":
        return None
    price = line.unit_price_cents
    if line.family and price == price.to_integral_value():
        return f"{period_requests_url}&{urlencode({'family': line.family, 'price': int(price)})}"
    return period_requests_url


@team_member_required(Perm.MANAGE_BILLING)
def invoice_pdf(request, invoice_id):
    invoice = team_invoice(request, invoice_id)
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    content = render_invoice_pdf(
        invoice,
        list(invoice.lines.all()),
        team_billing_details(request.team),
        issuer=settings.SITE_NAME,
        payment_instructions=selectors.payment_instructions(invoice),
    )
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_http_methods(["GET", "POST"])
@team_member_required(Perm.MANAGE_BILLING)
def billing_details(request):
    """Edit the company name, address, tax id and billing email printed on invoices (audited)."""
    details = team_billing_details(request.team)
    before = {field: getattr(details, field) for field in DETAIL_FIELDS} if details else {}
    form = BillingDetailsForm(request.POST or None, instance=details or BillingDetails(team=request.team))
    if request.method == "POST" and form.is_valid():
        after = {field: form.cleaned_data[field] for field in DETAIL_FIELDS}
        changed = sorted(field for field in DETAIL_FIELDS if before.get(field) != after[field])
        if not changed:
            messages.info(request, "Nothing changed in your billing details.")
            return redirect("billing")
        with transaction.atomic():
            form.save()
            record_audit(
                team=request.team,
                actor=request.user,
                action="billing.details_changed",
                target=after["company_name"],
                fields=changed,
            )
        messages.success(request, "Billing details saved: they appear on every invoice from now on.")
        return redirect("billing")
    return render(request, "billing/details.html", {"form": form, "details": details})
