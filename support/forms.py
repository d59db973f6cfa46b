"""The Support tab's forms: an email ticket (subject and message) and a chat message (message only)."""

from django import forms

from accounts.validators import validate_single_line
from support.models import BODY_MAX, SUBJECT_MAX, Ticket


class TicketForm(forms.Form):
    channel = forms.ChoiceField(choices=Ticket.Channel.choices, widget=forms.HiddenInput)
    subject = forms.CharField(max_length=SUBJECT_MAX, required=False, validators=[validate_single_line])
    body = forms.CharField(
        label="Message",
        max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Up to 5,000 characters.",
    )

    def __init__(self, *args, channel: str, **kwargs):
        super().__init__(*args, auto_id=f"id_{channel}_%s", initial={"channel": channel}, **kwargs)
        if channel == Ticket.Channel.EMAIL:
            self.fields["subject"].required = True
            self.fields["subject"].error_messages["required"] = "Give your question a subject."
        else:  # a chat message is its own subject
            del self.fields["subject"]
            self.fields["body"].widget.attrs.update(rows=3, placeholder="Type your message…")
        self.fields["body"].error_messages["required"] = "Write your question first."
