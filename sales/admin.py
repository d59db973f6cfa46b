"""Staff follow up Contact sales leads: what the team sent is read-only; staff set the status and keep notes."""

from django.contrib import admin

from sales.models import Lead


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = ["company", "team", "expected_monthly_requests", "expected_vehicles", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["company", "team__name", "requested_by__email", "message"]
    list_select_related = ["team"]
    fieldsets = [
        ("Follow-up", {"fields": ["status", "staff_notes"]}),
        (
            "What the team sent",
            {
                "fields": [
                    "team",
                    "requested_by",
                    "company",
                    "expected_monthly_requests",
                    "expected_vehicles",
                    "message",
                ]
            },
        ),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]
    readonly_fields = ["team", "requested_by", "company", "expected_monthly_requests", "expected_vehicles", "message",
                       "created_at", "updated_at"]  # fmt: skip

    def has_add_permission(self, request):
        return False  # teams ask from the dashboard's Contact sales page

    def has_delete_permission(self, request, obj=None):
        return False  # a lead is a record of what the team asked
