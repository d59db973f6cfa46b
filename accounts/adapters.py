from allauth.account.adapter import DefaultAccountAdapter
from django.db import transaction

from accounts.teams import create_personal_team


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        """Every new account starts with a personal team it owns."""
        with transaction.atomic():
            user = super().save_user(request, user, form, commit=commit)
            if commit:
                create_personal_team(user=user)
        return user
