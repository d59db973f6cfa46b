"""Personal access tokens page (/settings/tokens/): the signed-in user's tokens in the current team."""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts import personal_tokens
from accounts.decorators import team_member_required
from accounts.validators import validate_single_line

TOKEN_PAGE_SIZE = 25


def _expiry_label(days: int | None) -> str:
    return f"{days} days" if days else "Never"


class PersonalTokenForm(forms.Form):
    name = forms.CharField(
        label="Token name",
        max_length=100,
        validators=[validate_single_line],
        help_text="What it is for, e.g. “finance spreadsheet”.",
        error_messages={"required": "Enter a name for the token."},
    )
    expires_in = forms.TypedChoiceField(
        label="Expires after",
        choices=[(str(d or "never"), _expiry_label(d)) for d in personal_tokens.EXPIRY_CHOICES_DAYS],
        coerce=lambda value: None if value == "never" else int(value),
        initial=str(personal_tokens.DEFAULT_EXPIRY_DAYS),
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Enter a name for the token.")
        return name


@team_member_required()
def token_list(request, create_form=None, status=200):
    tokens = personal_tokens.user_personal_tokens(request.membership)
    page = Paginator(tokens, TOKEN_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "tokens": page.object_list,
        "page": page,
        "now": timezone.now(),
        "create_form": create_form or PersonalTokenForm(),
    }
    return render(request, "accounts/tokens.html", context, status=status)


@require_POST
@team_member_required()
def token_create(request):
    form = PersonalTokenForm(request.POST)
    if not form.is_valid():
        return token_list(request, create_form=form, status=400)
    token, secret = personal_tokens.create_personal_token(
        actor=request.membership, name=form.cleaned_data["name"], expires_in_days=form.cleaned_data["expires_in"]
    )
    # Rendered straight from the POST, never stored: the plaintext exists only in this response.
    response = render(request, "accounts/tokens_created.html", {"token": token, "secret": secret})
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
@team_member_required()
def token_revoke(request, token_id):
    token = personal_tokens.get_user_personal_token(request.membership, token_id)
    if request.method == "GET":
        return render(request, "accounts/tokens_revoke.html", {"token": token})
    personal_tokens.revoke_personal_token(actor=request.membership, token=token)
    messages.success(request, f"Revoked {token.name}. It no longer works.")
    return redirect("personal_tokens")
