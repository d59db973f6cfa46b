"""Connect and the token endpoint. Optional trailing slash, never a redirect (the SDKs call both forms)."""

from django.urls import re_path

from vehicles.connect import tester_views, views

urlpatterns = [
    re_path(r"^oauth/authorize/?$", views.authorize, name="connect_authorize"),
    re_path(r"^oauth/connect/brand/?$", views.brand, name="connect_brand"),
    re_path(r"^oauth/connect/sign-in/?$", views.signin, name="connect_signin"),
    re_path(r"^oauth/connect/consent/?$", views.consent, name="connect_consent"),
    re_path(r"^oauth/token/?$", views.token, name="oauth_token"),
    # The dashboard's Connect tester lands here (vehicles/connect/tester.py); not part of Smartcar's API.
    re_path(r"^connect/callback/?$", tester_views.test_callback, name="connect_test_callback"),
]
