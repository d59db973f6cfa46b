from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.contrib.sites.shortcuts import get_current_site
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
        context = {"request": request, "email": email, "current_site": get_current_site(request), **context}
        message = self.render_mail(template_prefix, email, context)
        with transaction.atomic():
            queue_email(message, template=template_prefix, sensitive=True)
