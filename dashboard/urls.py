from django.contrib import admin
from django.urls import include, path

from billing import webhook_views
from dashboard import views

urlpatterns = [
    path("", views.home, name="home"),
    path("overview/", views.overview, name="overview"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/mfa-required/", views.admin_mfa_required, name="admin_mfa_required"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("vehicles.urls")),
    path("", include("requestlog.urls")),
    path("", include("vehicles.connect.urls")),
    path("", include("vehicles.api.urls")),  # /v2.0/... Smartcar-compatible API
    path("", include("billing.urls")),
    path("", include("garage.urls")),
    path("", include("support.urls")),
    path("", include("sales.urls")),
    path("api/v1/", include("billing.api_urls")),
    path("billing/stripe/webhook", webhook_views.stripe_webhook, name="stripe_webhook"),
]
