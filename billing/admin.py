"""Staff views of billing. Plans are editable (DESIGN §1: plans are data); counters and the audit log are read-only,
because editing them by hand would make the books disagree with the usage events behind them."""

from django.contrib import admin

from billing.models import (
    BillingDetails,
    BillingEvent,
    BillingPeriod,
    Invoice,
    InvoiceLine,
    Payment,
    Plan,
    StripeEvent,
    Subscription,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "price_per_request_cents", "request_allowance", "vehicle_allowance", "self_serve"]
    ordering = ["sort_order"]
    readonly_fields = ["code"]

    def get_readonly_fields(self, request, obj=None):
        # The code is what the application refers to; it is set once, when the plan is created.
        return ["code"] if obj else []


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["team", "plan", "pending_plan", "pending_at", "status", "card_on_file"]
    list_filter = ["plan", "status"]
    search_fields = ["team__name"]
    list_select_related = ["team", "plan", "pending_plan"]
    readonly_fields = ["team", "plan", "pending_plan", "pending_at", "updated_at"]


@admin.register(BillingPeriod)
class BillingPeriodAdmin(ReadOnlyAdmin):
    list_display = ["team", "start", "end", "plan", "requests_used", "request_allowance", "vehicles_active",
                    "accrued_cents", "status"]  # fmt: skip
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
    fields = ["position", "kind", "description", "quantity", "unit_price_cents", "amount_cents"]
    readonly_fields = fields


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    """Issued invoices are never edited: voiding and marking paid come with the payments and Enterprise issues."""

    list_display = ["number", "team", "period", "total_cents", "status", "issued_at", "paid_at"]
    list_filter = ["status"]
    search_fields = ["number", "team__name"]
    list_select_related = ["team", "period"]
    date_hierarchy = "issued_at"
    inlines = [InvoiceLineInline]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["invoice", "attempt", "status", "amount_cents", "failure_code", "stripe_payment_intent_id",
                    "created_at"]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["invoice__number", "stripe_payment_intent_id", "idempotency_key"]
    list_select_related = ["invoice"]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "type", "event_id", "processed_at", "error"]
    list_filter = ["type"]
    search_fields = ["event_id"]


@admin.register(BillingDetails)
class BillingDetailsAdmin(admin.ModelAdmin):
    list_display = ["team", "company_name", "billing_email", "tax_id"]
    search_fields = ["team__name", "company_name", "billing_email"]
