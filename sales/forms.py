"""The Contact sales form: who the team is and the volumes it expects."""

from django import forms

from accounts.validators import validate_single_line
from sales.models import Lead


class ContactSalesForm(forms.ModelForm):
    expected_monthly_requests = forms.IntegerField(
        label="Expected requests per month",
        min_value=1,
        max_value=10**12,
        help_text="Billable API requests a month, roughly.",
        error_messages={"required": "Enter how many requests a month you expect."},
    )
    expected_vehicles = forms.IntegerField(
        label="Expected vehicles",
        min_value=1,
        max_value=10**9,
        help_text="Vehicles you expect to connect.",
        error_messages={"required": "Enter how many vehicles you expect to connect."},
    )

    class Meta:
        model = Lead
        fields = ["company", "expected_monthly_requests", "expected_vehicles", "message"]
        labels = {"message": "Anything else we should know (optional)"}
        widgets = {"message": forms.Textarea(attrs={"rows": 5})}
        error_messages = {"company": {"required": "Enter your company's name."}}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["company"].validators.append(validate_single_line)
