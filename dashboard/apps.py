from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"


class IgnitionAdminConfig(AdminConfig):
    default_site = "dashboard.admin_site.StaffMFAAdminSite"
