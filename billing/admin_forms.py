"""The form of the billing admin's actions that ask staff for a reason (voiding, marking paid, ending contracts)."""

from django import forms


class ReasonForm(forms.Form):
    note = forms.CharField(label="Reason", widget=forms.Textarea(attrs={"rows": 3}), max_length=500)

    def __init__(self, *args, label: str = "Reason", help_text: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["note"].label, self.fields["note"].help_text = label, help_text
