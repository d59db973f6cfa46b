"""The dashboard's JSON API for billing, under /api/v1/ (see docs/usage-api.md)."""

from django.urls import path

from billing import api

urlpatterns = [
    path("billing/usage", api.UsageView.as_view(), name="api_billing_usage"),
    path("billing/usage.csv", api.UsageCSVView.as_view(), name="api_billing_usage_csv"),
]
