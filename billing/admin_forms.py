"""The form of the billing admin's actions that ask staff for a reason (voiding, marking paid, ending contracts)."""

from django import forms


class ReasonForm(forms.Form):
    note = forms.CharField(label="Reason", widget=forms.Textarea(attrs={"rows": 3}), max_length=500)
