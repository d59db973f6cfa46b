from types import SimpleNamespace

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.conf import settings
from django.db import transaction

from accounts.teams import create_personal_team
from notifications.outbox import queue_email


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        """Every new account starts with a personal team it owns."""
        with transaction.atomic():
            user = super().save_user(request, user, form, commit=commit)
            if commit:
                create_personal_team(user=user)
        return user

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """allauth's emails (verification, password reset, notices) go through the outbox like every other.

        The same context allauth's own send_mail builds; they carry secret links, so they are kept only until sent.
        """
        request = allauth_context.request
        context = {"request": request, "email": email, **context}
        # allauth says "Hello from <site>!" and signs with its domain: the product's name and public address, not
        # the host the request came to (127.0.0.1:8000 in development, an internal name behind a proxy).
        context["current_site"] = SimpleNamespace(name=settings.SITE_NAME, domain=settings.SITE_ROOT)
        if request is not None:  # and its links (verify, reset, sign up) point at SITE_ROOT too
            origin = request.build_absolute_uri("/").rstrip("/")
            context = {key: _on_site_root(value, origin) for key, value in context.items()}
        message = self.render_mail(template_prefix, email, context)
        with transaction.atomic():
            queue_email(message, template=template_prefix, sensitive=True)


def _on_site_root(value, origin: str):
    """A link allauth built on the request's host, moved to SITE_ROOT; anything else as it is."""
    if isinstance(value, str) and value.startswith(origin + "/"):
        return settings.SITE_ROOT + value[len(origin) :]
    return value
