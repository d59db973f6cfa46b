from datetime import date, timedelta

from django import forms

from billing.models import BillingPeriod, Plan


def period_key(period: BillingPeriod) -> str:
    """How a period is named in URLs (`?period=`): its first day, UTC."""
    return period.start.date().isoformat()


class PeriodForm(forms.Form):
    """Which of the team's periods the Billing tab shows; `cleaned_data["period"]` is the BillingPeriod."""

    period = forms.ChoiceField(label="Billing period")

    def __init__(self, *args, periods: list[BillingPeriod], current: BillingPeriod, **kwargs):
        super().__init__(*args, **kwargs)
        self._periods = {period_key(period): period for period in periods}
        self.fields["period"].choices = [
            (key, _label(period, period.pk == current.pk)) for key, period in self._periods.items()
        ]

    def clean_period(self) -> BillingPeriod:
        return self._periods[self.cleaned_data["period"]]


def last_day(period: BillingPeriod) -> date:
    """The period's last (UTC) day: its end is the exclusive midnight after it."""
    return (period.end - timedelta(microseconds=1)).date()


def _label(period: BillingPeriod, is_current: bool) -> str:
    text = f"{period.start:%-d %b %Y} – {last_day(period):%-d %b %Y}"
    return f"{text} (current)" if is_current else text


class PlanChoiceForm(forms.Form):
    """The plan a switch is about, by code (`?plan=` on the confirmation page, a hidden field when confirming)."""

    plan = forms.ModelChoiceField(queryset=Plan.objects.all(), to_field_name="code")
