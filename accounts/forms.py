from django import forms
from django.conf import settings

from accounts.roles import ROLE_RANK, Role
from accounts.validators import validate_single_line


class TeamNameForm(forms.Form):
    name = forms.CharField(
        label="Team name",
        max_length=100,
        validators=[validate_single_line],
        error_messages={"required": "Enter a team name."},
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Enter a team name.")
        return name


def roles_grantable_by(actor_role: str) -> list[tuple[str, str]]:
    """Roles an actor can hand out: never above their own."""
    rank = ROLE_RANK[Role(actor_role)]
    return [(role.value, role.label) for role in Role if ROLE_RANK[role] <= rank]


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.VIEWER)

    def __init__(self, *args, actor_role: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = roles_grantable_by(actor_role)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApplicationNameForm(forms.Form):
    name = forms.CharField(
        label="Application name",
        max_length=100,
        validators=[validate_single_line],
        error_messages={"required": "Enter a name for the application."},
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Enter a name for the application.")
        return name


def _grace_label(hours: int) -> str:
    if hours == 0:
        return "End the old secret now"
    if hours % 24 == 0:
        days = hours // 24
        return f"Keep the old secret for {days} day{'s' if days > 1 else ''}"
    return f"Keep the old secret for {hours} hour{'s' if hours > 1 else ''}"


class RotateSecretForm(forms.Form):
    grace_hours = forms.TypedChoiceField(
        label="Old secret",
        coerce=int,
        choices=[(h, _grace_label(h)) for h in settings.CLIENT_SECRET_GRACE_CHOICES_HOURS],
        initial=24,
    )


class RedirectURIForm(forms.Form):
    uri = forms.CharField(
        label="Redirect URI",
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "https://example.com/callback", "inputmode": "url"}),
    )


class EditorsForm(forms.Form):
    editors = forms.TypedMultipleChoiceField(
        label="Editors who may change this application",
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, editor_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["editors"].choices = editor_choices
