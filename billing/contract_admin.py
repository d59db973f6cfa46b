"""The staff admin of Enterprise contracts: created through billing.contracts, read-only afterwards.

Staff add a contract with its tiers; the form refuses what the service would (overlap, a grant, a
card-paid contract without a card, tiers that cannot price requests) as form errors. Once created,
its terms never change (a period's usage is rated by them at close): staff end or cancel it with a
reason (the list's action) and create a new one.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join

from billing import contracts, selectors
from billing.admin_forms import ReasonForm
from billing.contracts import ContractError, TierTerms
from billing.models import BillingPeriod, Contract, ContractTier, Subscription
from billing.templatetags.billing_tags import allowance, cents, unit_cents
from dashboard.admin_actions import apply_to_each, confirmation_page

CONTRACT_TERMS = ["reference", "starts_at", "ends_at", "request_allowance", "vehicle_allowance", "pricing",
                  "minimum_cents", "paid_by", "net_days"]  # fmt: skip

ADD_CONTRACT_NOTE = (
    "The contract is created through billing.contracts: it starts at once if its start has come, and it is "
    "recorded in the team's billing history. Its terms cannot be edited afterwards: to change them, end or "
    "cancel it (the list's action) and create a new one."
)


class ContractForm(forms.ModelForm):
    """The contract's terms, refused with the service's reason (overlap, a grant, no card) as a form error."""

    class Meta:
        model = Contract
        fields = ["team", *CONTRACT_TERMS]

    def clean(self):
        cleaned = super().clean()
        team, starts_at, ends_at, paid_by = (cleaned.get(name) for name in ["team", "starts_at", "ends_at", "paid_by"])
        if team is None or starts_at is None or ends_at is None or not paid_by:
            return cleaned  # a field error says what is missing
        reason = contracts.why_contract_cannot_start(team.pk, starts_at=starts_at, ends_at=ends_at, paid_by=paid_by)
        if reason:
            # On the end date when that is the problem (and the model's check constraint then stays quiet).
            self.add_error("ends_at" if ends_at <= starts_at else None, reason)
        return cleaned


class TierFormSet(forms.BaseInlineFormSet):
    """The tiers, checked by the service's rules (billing.contracts.priced_terms) against the contract's pricing."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        try:
            contracts.priced_terms(self.instance.pricing, self.tier_terms(), self.instance.minimum_cents or 0)
        except ContractError as error:
            raise forms.ValidationError(str(error)) from error

    def tier_terms(self) -> list[TierTerms]:
        rows = [form.cleaned_data for form in self.forms if form.cleaned_data]  # blank extra rows have none
        return [TierTerms(row["up_to"], row["unit_price_cents"]) for row in rows]


class ContractTierInline(admin.TabularInline):
    """Only on the add page: a contract's tiers never change once it exists."""

    model = ContractTier
    formset = TierFormSet
    fields = ["up_to", "unit_price_cents"]
    extra = 3
    can_delete = False
    verbose_name_plural = "Price tiers per request (the last tier has an empty “up to”)"

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "up_to":
            field.help_text = (
                "Requests in the period this tier reaches, counted from the first (e.g. 10,000 then 100,000). "
                "Leave it empty on the last tier: it has no upper bound."
            )
        return field


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    """Staff create contracts here through billing.contracts, and end or cancel them with a reason. A contract is
    read-only once created: the terms of a started one price the team's usage, and a scheduled one is canceled and
    agreed again rather than edited. Never deleted."""

    form = ContractForm
    list_display = ["team", "reference", "status", "starts_at", "ends_at", "pricing", "minimum", "paid_by"]
    list_filter = ["status", "pricing", "paid_by"]
    search_fields = ["team__name", "reference"]
    list_select_related = ["team"]
    date_hierarchy = "starts_at"
    autocomplete_fields = ["team"]
    actions = ["end_contracts"]

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and obj is None  # the action only, no edits

    def has_delete_permission(self, request, obj=None):
        return False

    def get_inlines(self, request, obj):
        return [ContractTierInline] if obj is None else []

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["team", *CONTRACT_TERMS, "status", "started_at", "ended_at", "previous_plan", "created_by",
                "created_at", "tiers", "team_plan", "team_usage"]  # fmt: skip

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (None, {"description": ADD_CONTRACT_NOTE, "fields": ["team", "reference", "starts_at", "ends_at"]}),
                ("Allowances per billing period (empty for unlimited)",
                 {"fields": ["request_allowance", "vehicle_allowance"]}),
                ("Pricing", {"fields": ["pricing", "minimum_cents"]}),
                ("Payment", {"fields": ["paid_by", "net_days"]}),
            ]  # fmt: skip
        return [
            (None, {"description": self._read_only_note(obj), "fields": ["team", "reference", "status", "starts_at",
                                                                          "ends_at", "started_at", "ended_at"]}),
            ("Terms", {"fields": ["request_allowance", "vehicle_allowance", "pricing", "tiers", "minimum_cents",
                                  "paid_by", "net_days"]}),
            ("The team now", {"fields": ["team_plan", "team_usage", "previous_plan"]}),
            ("Record", {"fields": ["created_by", "created_at"]}),
        ]  # fmt: skip

    @staticmethod
    def _read_only_note(contract: Contract) -> str:
        if contract.status == Contract.Status.SCHEDULED:
            return ("This contract has not started. Its terms cannot be edited: to change them, cancel it (“End or "
                    "cancel contract” in the list) and create a new one.")  # fmt: skip
        return (f"This contract is {contract.get_status_display().lower()}: its terms price the team's usage and "
                "never change. To agree new terms, end it and create a new contract.")  # fmt: skip

    @admin.display(description="monthly minimum", ordering="minimum_cents")
    def minimum(self, contract):
        return cents(contract.minimum_cents) if contract.minimum_cents else "—"

    @admin.display(description="tiers (per request)")
    def tiers(self, contract):
        period = self._current_period(contract) if contract.status == Contract.Status.ACTIVE else None
        rows = contracts.tier_rows(contract, used=period.requests_used if period else None)
        return format_html_join(
            "",
            "<div>{} at {}{}</div>",
            ((_tier_range(row), unit_cents(row.unit_price_cents), " ← this period's usage" if row.current else "")
             for row in rows),
        )  # fmt: skip

    @admin.display(description="team's plan")
    def team_plan(self, contract):
        subscription = Subscription.objects.filter(team_id=contract.team_id).select_related("plan").first()
        return subscription.plan.name if subscription else "Free (no subscription yet)"

    @admin.display(description="team's current period")
    def team_usage(self, contract):
        period = self._current_period(contract)
        if period is None:
            return "No period is open now."
        return (f"{period.start:%-d %b} – {period.end:%-d %b %Y}: {intcomma(period.requests_used)} requests used of "
                f"{allowance(period.request_allowance)}; {intcomma(period.vehicles_active)} vehicles active of "
                f"{allowance(period.vehicle_allowance)}")  # fmt: skip

    @staticmethod
    def _current_period(contract: Contract) -> BillingPeriod | None:
        now = timezone.now()
        return selectors.team_periods(contract.team).filter(start__lte=now, end__gt=now).first()

    # Creating: through billing.contracts.create_contract, so the result is the service's (audited, started if due).

    def save_model(self, request, obj, form, change):
        """Nothing here: the contract and its tiers are created together in save_related."""

    def save_related(self, request, form, formsets, change):
        (tiers,) = formsets
        tiers.new_objects, tiers.changed_objects, tiers.deleted_objects = [], [], []  # read by the change message
        terms = {name: form.cleaned_data[name] for name in CONTRACT_TERMS}
        try:
            contract = contracts.create_contract(
                team_id=form.cleaned_data["team"].pk, actor=request.user, tiers=tiers.tier_terms(), **terms
            )
        except ContractError as error:  # something changed since the form was checked (another contract)
            self.message_user(request, f"No contract was created: {error}", messages.ERROR)
            return
        form.instance.pk = contract.pk
        form.instance.refresh_from_db()
        tiers.new_objects = list(contract.tiers.all())

    def log_addition(self, request, obj, message):
        if obj.pk is not None:
            return super().log_addition(request, obj, message)
        return None

    def response_add(self, request, obj, post_url_continue=None):
        if obj.pk is None:
            return HttpResponseRedirect(reverse("admin:billing_contract_add"))
        return super().response_add(request, obj, post_url_continue)

    # Ending or canceling, with a reason.

    @admin.action(description="End or cancel contract…", permissions=["change"])
    def end_contracts(self, request, queryset):
        form = ReasonForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            note = form.cleaned_data["note"]
            apply_to_each(self, request, queryset.order_by("starts_at", "pk"),
                          lambda pk: contracts.end_contract(pk, actor=request.user, reason=note),
                          refused=ContractError, name=lambda contract: contract.name, done_label="Ended or canceled",
                          noun="contract")  # fmt: skip
            return None
        chosen = queryset.select_related("team").order_by("starts_at", "pk")
        return confirmation_page(
            self,
            request,
            action="end_contracts",
            title="End or cancel contracts",
            explanation="An active contract ends now and the team goes back to the plan it had before; a scheduled "
            "one is canceled and never starts. Say why; the reason is kept in the team's billing history.",
            form=form,
            items=(
                (
                    c.pk,
                    f"{c.name} — {c.team} — {c.get_status_display()} — {c.starts_at:%-d %B %Y} – {c.ends_at:%-d %B %Y}",
                )
                for c in chosen
            ),
        )


def _tier_range(row: contracts.TierRow) -> str:
    if row.up_to is None:
        return f"Beyond {intcomma(row.first - 1)}" if row.first > 1 else "Every request"
    return f"{intcomma(row.first)} – {intcomma(row.up_to)}"
