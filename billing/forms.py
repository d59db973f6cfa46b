from datetime import date, timedelta

from django import forms

from accounts.validators import validate_single_line
from billing.models import BillingDetails, BillingPeriod, Plan


def period_key(period: BillingPeriod) -> str:
    """How a period is named in URLs (`?period=`): its first day, UTC."""
    return period.start.date().isoformat()


class PeriodForm(forms.Form):
    """Which of the team's periods the Billing tab shows; `cleaned_data["period"]` is the BillingPeriod."""

    period = forms.ChoiceField(label="Billing period")

    def __init__(
        self, *args, periods: list[BillingPeriod], current: BillingPeriod, current_note: str = "current", **kwargs
    ):
        """`current_note` marks the period holding now ("current", or "closed early": billing.state says which)."""
        super().__init__(*args, **kwargs)
        self._periods = {period_key(period): period for period in periods}
        self.fields["period"].choices = [
            (key, _label(period, _note(period, current, current_note))) for key, period in self._periods.items()
        ]

    def clean_period(self) -> BillingPeriod:
        return self._periods[self.cleaned_data["period"]]


def last_day(period: BillingPeriod) -> date:
    """The period's last (UTC) day: its end is the exclusive midnight after it."""
    return (period.end - timedelta(microseconds=1)).date()


def _note(period: BillingPeriod, current: BillingPeriod, current_note: str) -> str:
    if period.pk == current.pk:
        return current_note
    return "next" if period.start > current.start else ""  # opened ahead by closing the current one early


def _label(period: BillingPeriod, note: str) -> str:
    text = f"{period.start:%-d %b %Y} – {last_day(period):%-d %b %Y}"
    return f"{text} ({note})" if note else text


class PlanChoiceForm(forms.Form):
    """The plan a switch is about, by code (`?plan=` on the confirmation page, a hidden field when confirming)."""

    plan = forms.ModelChoiceField(queryset=Plan.objects.all(), to_field_name="code")


class BillingDetailsForm(forms.ModelForm):
    """The company name, address, tax id and billing email printed on the team's invoices."""

    class Meta:
        model = BillingDetails
        fields = ["company_name", "address", "tax_id", "billing_email"]
        widgets = {"address": forms.Textarea(attrs={"rows": 4})}
        error_messages = {
            "company_name": {"required": "Enter the company name your invoices are made out to."},
            "address": {"required": "Enter the billing address, as it should appear on invoices."},
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("company_name", "tax_id"):
            self.fields[name].validators.append(validate_single_line)

    def clean_company_name(self) -> str:
        name = self.cleaned_data["company_name"].strip()
        if not name:
            raise forms.ValidationError("Enter the company name your invoices are made out to.")
        return name

    def clean_address(self) -> str:
        lines = [line.strip() for line in self.cleaned_data["address"].splitlines()]
        lines = [line for line in lines if line]
        if not lines:
            raise forms.ValidationError("Enter the billing address, as it should appear on invoices.")
        if len(lines) > 8:
            raise forms.ValidationError("Keep the address to 8 lines or fewer.")
        return "\n".join(lines)

    def clean_tax_id(self) -> str:
        return self.cleaned_data["tax_id"].strip().upper()
