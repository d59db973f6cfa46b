"""Connect's three forms: brand choice, the owner's sign-in at the brand, and consent."""

from django import forms

from vehicles import catalog
from vehicles.models import SimulatedVehicle


class BrandForm(forms.Form):
    make = forms.ChoiceField(widget=forms.RadioSelect, error_messages={"required": "Choose your vehicle's brand."})

    def __init__(self, *args, make_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["make"].choices = [(make, catalog.display_name(make)) for make in make_names]


class OwnerSignInForm(forms.Form):
    # Not an EmailField: test-mode logins such as `3-vehicles@x` have no dot in the domain.
    email = forms.CharField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True})
    )
    password = forms.CharField(
        max_length=128, strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        if "@" not in email:
            raise forms.ValidationError("Enter the email address of your account.")
        return email


class ConsentForm(forms.Form):
    """Allow or Deny; on Allow, the vehicles to share (one, as a radio, in single-select mode)."""

    decision = forms.ChoiceField(choices=[("allow", "Allow"), ("deny", "Deny")])
    vehicle = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, vehicles: list[SimulatedVehicle], single_select: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.vehicles = {str(v.public_id): v for v in vehicles}
        self.single_select = single_select
        choices = [
            (public_id, f"{v.year} {catalog.display_name(v.make)} {v.model} · VIN {v.vin}")
            for public_id, v in self.vehicles.items()
        ]
        if single_select:
            self.fields["vehicle"] = forms.ChoiceField(required=False, widget=forms.RadioSelect)
        self.fields["vehicle"].choices = choices
        if not self.is_bound:
            first = next(iter(self.vehicles), None)
            self.initial["vehicle"] = first if single_select else list(self.vehicles)

    def clean(self):
        data = super().clean()
        if data.get("decision") != "allow":
            return data
        chosen = data.get("vehicle") or []
        chosen = [chosen] if isinstance(chosen, str) else chosen
        if not chosen:
            raise forms.ValidationError("Choose at least one vehicle to share, or deny access.")
        data["vehicles"] = [self.vehicles[public_id] for public_id in chosen]
        return data
