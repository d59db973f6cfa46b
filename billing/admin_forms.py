"""Forms of the billing admin's actions."""

from django import forms


class ReasonForm(forms.Form):
    note = forms.CharField(label="Reason", widget=forms.Textarea(attrs={"rows": 3}), max_length=500)
