from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self):
        from dashboard import checks  # noqa: F401 (registers the system checks)


class IgnitionAdminConfig(AdminConfig):
    default_site = "dashboard.admin_site.StaffMFAAdminSite"
