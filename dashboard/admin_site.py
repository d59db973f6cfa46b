from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from accounts.selectors import user_has_mfa


class StaffMFAAdminSite(admin.AdminSite):
    """The admin is for active staff who have MFA enabled; everyone logs in through allauth."""

    site_header = "Ignition back office"
    site_title = "Ignition admin"
    index_title = "Back office"

    def has_permission(self, request):
        user = request.user
        return bool(user.is_active and user.is_staff and user_has_mfa(user))

    def login(self, request, extra_context=None):
        user = request.user
        if user.is_authenticated and user.is_active and user.is_staff and not user_has_mfa(user):
            return redirect("admin_mfa_required")
        if user.is_authenticated and not user.is_staff:
            return redirect("overview")
        next_url = request.GET.get("next") or reverse("admin:index")
        return redirect(f"{reverse('account_login')}?{urlencode({'next': next_url})}")
