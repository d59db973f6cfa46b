"""Routes of the Smartcar v2.0 API, included at the site root by dashboard/urls.py.

Every route takes an optional trailing slash and never redirects (the SDKs differ on slashes,
and a 301 would turn POST and DELETE into GET). Other well-formed versions (`/v3.0/...`) answer
404 RESOURCE_NOT_FOUND:VERSION; anything unmatched under /v2.0/ answers 404 RESOURCE_NOT_FOUND:PATH,
always in the JSON envelope.
"""

import re

from django.urls import include, re_path

from vehicles.api import management, openapi, views
from vehicles.api.resources import PATHS

VEHICLE = r"^vehicles/(?P<vehicle_id>[^/]+)"
RESOURCE = "|".join(re.escape(path) for path in PATHS)

v2_patterns = [
    re_path(r"^vehicles/?$", views.vehicle_list),
    re_path(r"^user/?$", views.user),
    re_path(VEHICLE + r"/?$", views.vehicle_resource),
    re_path(VEHICLE + r"/permissions/?$", views.permissions),
    re_path(VEHICLE + r"/application/?$", views.disconnect),
    re_path(VEHICLE + r"/batch/?$", views.batch),
    re_path(VEHICLE + rf"/(?P<resource>{RESOURCE})/?$", views.vehicle_resource),
    re_path(r"^management/connections/?$", management.connections),
    re_path(r"^openapi\.json$", openapi.schema_view, name=openapi.SCHEMA_URL_NAME),
    re_path(r"", views.path_not_found),
]

urlpatterns = [
    re_path(r"^docs/api/$", openapi.docs_view, name=openapi.DOCS_URL_NAME),  # Swagger UI of /v2.0/openapi.json
    re_path(r"^v2\.0/", include(v2_patterns)),
    re_path(r"^v2\.0$", views.path_not_found),
    re_path(r"^v\d+\.\d+(?:/|$)", views.version_not_found),
]
