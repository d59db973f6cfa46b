from django import forms

from accounts.validators import validate_single_line


class SimulatedVehicleForm(forms.Form):
    """Simulator: a vehicle by make (+ optional model/year) or by VIN, for a new or existing simulated owner."""

    make = forms.ChoiceField(label="Brand")
    model = forms.CharField(
        label="Model",
        required=False,
        max_length=60,
        validators=[validate_single_line],
        help_text="Leave empty for a typical model.",
    )
    year = forms.IntegerField(label="Year", required=False, min_value=1990, max_value=2030)
    vin = forms.CharField(label="VIN", required=False, max_length=17, help_text="Optional: a valid 17-character VIN.")
    owner = forms.ChoiceField(label="Owner login", required=False)

    def __init__(self, *args, make_choices, owner_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["make"].choices = make_choices
        self.fields["owner"].choices = [("", "A new owner login (shown once)")] + owner_choices

    def clean_vin(self):
        return self.cleaned_data["vin"].strip().upper()
