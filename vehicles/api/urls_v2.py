"""The URLconf of requests under /v2.0/: the vehicle API's own routes alone.

dashboard/api_middleware.py sets it on each API request, so resolving one doesn't walk the dashboard's patterns
(a few hundred microseconds a request). The routes are those of vehicles/api/urls.py, which the site's URLconf
includes as well (for reverse() and the checks that every documented path resolves).
"""

from django.urls import include, re_path

from vehicles.api.urls import v2_patterns

urlpatterns = [re_path(r"^v2\.0/", include(v2_patterns))]
