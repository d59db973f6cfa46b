"""The Garage application form: partial while a draft is saved, complete when it is submitted."""

from datetime import date

from django import forms
from django.utils import timezone

from accounts.validators import validate_single_line
from garage.models import GarageApplication
from garage.services import APPLICANT_FIELDS

EARLIEST_FOUNDING = date(1900, 1, 1)

# What each field needs to say when the application is submitted without it.
REQUIRED_MESSAGES = {
    "company_name": "Enter your company's name.",
    "website": "Enter your company's website.",
    "founded_on": "Enter the day your company was founded.",
    "stage": "Choose your company's stage.",
    "funding_raised_usd": "Enter the funding raised so far, in US dollars (0 if none).",
    "team_size": "Enter how many people work at your company.",
    "app_description": "Describe the app you are building.",
    "use_case": "Describe how your app uses vehicle data.",
    "expected_vehicles": "Enter how many vehicles you expect to connect in 3 months (0 if you don't know yet).",
    "contact_name": "Enter who we should contact about the application.",
    "contact_email": "Enter the contact's email address.",
}


class GarageApplicationForm(forms.ModelForm):
    """The applicant's fields; `complete=True` (submitting) requires every one, a draft none."""

    website = forms.URLField(max_length=200, assume_scheme="https", help_text="For example https://acme.example.")
    funding_raised_usd = forms.IntegerField(
        label="Funding raised (USD)", min_value=0, max_value=10**15, help_text="Whole US dollars; 0 if none."
    )
    team_size = forms.IntegerField(min_value=1, max_value=100_000, help_text="People, founders included.")
    expected_vehicles = forms.IntegerField(
        label="Vehicles in 3 months",
        min_value=0,
        max_value=10_000_000,
        help_text="Vehicles you expect to connect in the next 3 months.",
    )

    class Meta:
        model = GarageApplication
        fields = APPLICANT_FIELDS
        labels = {
            "founded_on": "Founded on",
            "app_description": "The app you are building",
            "use_case": "How you use vehicle data",
            "contact_email": "Contact email",
        }
        widgets = {
            "founded_on": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "app_description": forms.Textarea(attrs={"rows": 4}),
            "use_case": forms.Textarea(attrs={"rows": 4}),
        }

    def __init__(self, *args, complete: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            field.required = complete
            field.error_messages["required"] = REQUIRED_MESSAGES[name]
        self.fields["stage"].choices = [("", "Choose a stage")] + list(GarageApplication.Stage.choices)
        for name in ("company_name", "contact_name"):
            self.fields[name].validators.append(validate_single_line)

    def clean_founded_on(self) -> date | None:
        founded_on = self.cleaned_data["founded_on"]
        if founded_on and founded_on > timezone.localdate():
            raise forms.ValidationError("The founding date cannot be in the future.")
        if founded_on and founded_on < EARLIEST_FOUNDING:
            raise forms.ValidationError("Enter a founding date from 1900 on.")
        return founded_on
