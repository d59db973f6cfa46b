"""Staff views of billing. Plans are editable (DESIGN §1: plans are data); counters and the audit log are read-only,
because editing them by hand would make the books disagree with the usage events behind them."""

from django.contrib import admin, messages

from accounts.admin import TeamAdmin
from accounts.models import Team
from billing import backoffice
from billing.admin_forms import ReasonForm
from billing.contract_admin import ContractAdmin  # noqa: F401 (registers it)
from billing.models import (
    BillingDetails,
    BillingEvent,
    BillingPeriod,
    Contract,
    Grant,
    Invoice,
    InvoiceLine,
    Payment,
    Plan,
    StripeEvent,
    Subscription,
)
from billing.templatetags.billing_tags import cents, unit_cents
from dashboard.admin_actions import ReadOnlyAdmin, apply_to_each, confirmation_page


def dollars(field: str, label: str, *, unit: bool = False):
    """A field in cents shown in dollars ("$1,234.56"; a unit price keeps its fractions of a cent), sortable by it."""
    show_value = unit_cents if unit else cents

    def show(obj):
        value = getattr(obj, field)
        return "—" if value is None else show_value(value)

    show.__name__ = f"{field}_in_dollars"
    return admin.display(description=label, ordering=field)(show)


PRICE = dollars("price_per_request_cents", "price per request", unit=True)
ACCRUED = dollars("accrued_cents", "accrued")
TOTAL = dollars("total_cents", "total")


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "code", PRICE, "request_allowance", "vehicle_allowance", "self_serve"]
    ordering = ["sort_order"]
    readonly_fields = ["code"]

    def get_readonly_fields(self, request, obj=None):
        # The code is what the application refers to; it is set once, when the plan is created.
        return ["code"] if obj else []


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    """Read-only: plans change through the services, status through dunning and payments, cards through the card
    page; editing these by hand would bypass their audit trail and Stripe."""

    list_display = ["team", "plan", "pending_plan", "pending_at", "status", "card_on_file"]
    list_filter = ["plan", "status"]
    search_fields = ["team__name"]
    list_select_related = ["team", "plan", "pending_plan"]
    readonly_fields = ["team", "plan", "pending_plan", "pending_at", "updated_at"]


@admin.register(BillingPeriod)
class BillingPeriodAdmin(ReadOnlyAdmin):
    list_display = ["team", "start", "end", "plan", "requests_used", "request_allowance", "vehicles_active", ACCRUED,
                    "status"]  # fmt: skip
    list_filter = ["status", "plan"]
    search_fields = ["team__name"]
    list_select_related = ["team", "plan"]
    date_hierarchy = "start"


@admin.register(BillingEvent)
class BillingEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "team", "kind", "actor", "period"]
    list_filter = ["kind"]
    search_fields = ["team__name", "actor__email"]
    list_select_related = ["team", "actor", "period"]
    date_hierarchy = "created_at"


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    max_num = 0
    fields = [
        "position",
        "kind",
        "description",
        "quantity",
        dollars("unit_price_cents", "unit price", unit=True),
        dollars("amount_cents", "amount"),
    ]
    readonly_fields = fields


INVOICE_ACTIONS = {
    "void_invoices": {
        "title": "Void invoices",
        "explanation": "Nothing more will be charged for these invoices, and a suspension they caused is lifted. "
        "Say why; the reason is kept in the team's billing history.",
        "do": lambda pk, staff, note: backoffice.void_invoice(pk, staff=staff, reason=note),
        "done": "Voided",
        "label": "Reason for voiding",
        "help": "",
    },
    "mark_invoices_paid": {
        "title": "Mark invoices paid",
        "explanation": "For invoices paid outside Stripe (a bank transfer, invoice terms). Give the payment's "
        "reference; it is kept in the team's billing history.",
        "do": lambda pk, staff, note: backoffice.mark_invoice_paid(pk, staff=staff, reference=note),
        "done": "Marked paid",
        "label": "Payment reference",
        "help": "The bank transfer's reference, or how it was paid (e.g. a cheque number).",
    },
}


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    """Issued invoices are never edited; staff void them, mark them paid or resend their email (billing.backoffice)."""

    list_display = [
        "number",
        "team",
        "period",
        TOTAL,
        "status",
        "issued_at",
        "paid_at",
        dollars("refunded_cents", "refunded"),
        "dispute_status",
    ]
    list_filter = ["status"]
    search_fields = ["number", "team__name"]
    list_select_related = ["team", "period"]
    date_hierarchy = "issued_at"
    inlines = [InvoiceLineInline]
    actions = ["void_invoices", "mark_invoices_paid", "resend_invoice_email"]

    def has_change_permission(self, request, obj=None):
        return super(ReadOnlyAdmin, self).has_change_permission(request, obj) and obj is None  # actions, no edits

    @admin.action(description="Void selected invoices…", permissions=["change"])
    def void_invoices(self, request, queryset):
        return self._with_reason(request, queryset, "void_invoices")

    @admin.action(description="Mark selected invoices paid…", permissions=["change"])
    def mark_invoices_paid(self, request, queryset):
        return self._with_reason(request, queryset, "mark_invoices_paid")

    @admin.action(description="Resend the invoice email to the Owners", permissions=["change"])
    def resend_invoice_email(self, request, queryset):
        self._each(
            request, queryset, "Resent the email of", lambda pk: backoffice.resend_invoice_email(pk, staff=request.user)
        )

    def _with_reason(self, request, queryset, name):
        spec = INVOICE_ACTIONS[name]
        form = ReasonForm(
            request.POST if "confirm" in request.POST else None, label=spec["label"], help_text=spec["help"]
        )
        if form.is_bound and form.is_valid():
            note = form.cleaned_data["note"]
            self._each(request, queryset, spec["done"], lambda pk: spec["do"](pk, request.user, note))
            return None
        invoices = queryset.select_related("team").order_by("issued_at")
        return confirmation_page(
            self,
            request,
            action=name,
            title=spec["title"],
            explanation=spec["explanation"],
            form=form,
            items=((i.pk, f"{i.number} — {i.team} — {i.get_status_display()}") for i in invoices),
        )

    def _each(self, request, queryset, done_label, change):
        """Apply `change` to each invoice; one that cannot be changed is named and the rest go on."""
        invoices = queryset.order_by("issued_at", "pk")
        apply_to_each(self, request, invoices, change, refused=backoffice.BackOfficeError,
                      name=lambda invoice: invoice.number, done_label=done_label, noun="invoice")  # fmt: skip


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["invoice", "attempt", "status", dollars("amount_cents", "amount"), "failure_code",
                    "stripe_payment_intent_id", "created_at"]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["invoice__number", "stripe_payment_intent_id", "idempotency_key"]
    list_select_related = ["invoice"]


class FailedFilter(admin.SimpleListFilter):
    title, parameter_name = "outcome", "outcome"

    def lookups(self, request, model_admin):
        return [("failed", "Failed to apply"), ("applied", "Applied")]

    def queryset(self, request, queryset):
        if self.value() == "failed":
            return queryset.exclude(error="")
        if self.value() == "applied":
            return queryset.filter(error="")
        return queryset


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "type", "event_id", "processed_at", "error"]
    list_filter = ["type", FailedFilter]
    search_fields = ["event_id"]
    actions = ["replay"]

    def has_change_permission(self, request, obj=None):
        return super(ReadOnlyAdmin, self).has_change_permission(request, obj) and obj is None  # the action only

    @admin.action(description="Replay selected events that failed to apply", permissions=["change"])
    def replay(self, request, queryset):
        applied = 0
        for event in queryset:
            try:
                replayed = backoffice.replay_stripe_event(event.pk, staff=request.user)
            except backoffice.BackOfficeError as error:
                self.message_user(request, str(error), messages.WARNING)
                continue
            if replayed.error:
                self.message_user(request, f"{event.event_id} failed again: {replayed.error}", messages.ERROR)
            else:
                applied += 1
        if applied:
            self.message_user(request, f"Applied {applied} event{'s' if applied != 1 else ''}.", messages.SUCCESS)


@admin.register(BillingDetails)
class BillingDetailsAdmin(admin.ModelAdmin):
    list_display = ["team", "company_name", "billing_email", "tax_id"]
    search_fields = ["team__name", "company_name", "billing_email"]


@admin.register(Grant)
class GrantAdmin(ReadOnlyAdmin):
    """Grants start and end through their program (the Garage review) and the hourly task."""

    list_display = ["team", "program", "starts_at", "ends_at", "request_allowance", "vehicle_allowance", "status"]
    list_filter = ["program", "status"]
    search_fields = ["team__name"]
    list_select_related = ["team"]


# --- the team's page in the admin, with its billing -------------------------------------------------------------


class SubscriptionInline(admin.StackedInline):
    model = Subscription
    can_delete = False
    fields = ["plan", "pending_plan", "pending_at", "status", "card_brand", "card_last4", "stripe_customer_id"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ReadOnlyTabular(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PeriodInline(ReadOnlyTabular):
    model = BillingPeriod
    fields = ["start", "end", "plan", "requests_used", "request_allowance", "vehicles_active", ACCRUED, "status"]
    readonly_fields = fields
    max_num = 0
    ordering = ["-start"]


class TeamInvoiceInline(ReadOnlyTabular):
    model = Invoice
    fields = ["number", TOTAL, "status", "issued_at", "paid_at"]
    readonly_fields = fields
    max_num = 0


class TeamGrantInline(ReadOnlyTabular):
    model = Grant
    fields = ["program", "starts_at", "ends_at", "request_allowance", "vehicle_allowance", "status"]
    readonly_fields = fields
    max_num = 0


class TeamContractInline(ReadOnlyTabular):
    model = Contract
    fields = [
        "reference",
        "status",
        "starts_at",
        "ends_at",
        "pricing",
        dollars("minimum_cents", "monthly minimum"),
        "paid_by",
    ]
    readonly_fields = fields
    max_num = 0


admin.site.unregister(Team)


@admin.register(Team)
class TeamWithBillingAdmin(TeamAdmin):
    """The team's page shows its plan, periods and usage, invoices, grants and contracts next to members and audit
    log."""

    inlines = [SubscriptionInline, PeriodInline, TeamInvoiceInline, TeamGrantInline, TeamContractInline,
               *TeamAdmin.inlines]  # fmt: skip
