"""Staff look a request up by the SC-Request-Id a developer quotes (support tickets). The log is read-only here:
what the API wrote is the record."""

from django.contrib import admin

from dashboard.admin_actions import ReadOnlyAdmin
from requestlog.models import ApiRequest


@admin.register(ApiRequest)
class ApiRequestAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "team", "method", "endpoint", "status", "error_code", "billable", "request_id"]
    list_filter = ["billable", "method", "status"]
    search_fields = ["=request_id", "=batch_request_id"]  # exact: the table is large, a LIKE would scan it
    list_select_related = ["team"]
    show_full_result_count = False  # no COUNT(*) over the whole log on every page
    ordering = ["-id"]  # the primary key's index: about the order they were logged, at any size
