"""The outbox in the admin: read-only, with “send again” for emails that failed."""

from django.contrib import admin, messages
from django.template.defaultfilters import truncatechars

from notifications import outbox
from notifications.models import OutboundEmail


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin):
    list_display = ["created_at", "template", "to", "subject", "status", "attempts", "sent_at", "error"]
    list_filter = ["status", "template", "created_at"]
    search_fields = ["recipients", "subject"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    actions = ["send_again"]
    fields = [
        "template",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "due_at",
        "sent_at",
        "message_id",
        "from_email",
        "recipients",
        "subject",
        "text_body",
        "html_body",
        "sensitive",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # the product queues emails; staff only watch and resend

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and obj is None  # the action, no edits

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="to")
    def to(self, email: OutboundEmail) -> str:
        return ", ".join(email.recipients)

    @admin.display(description="last error")
    def error(self, email: OutboundEmail) -> str:
        return truncatechars(email.last_error, 80)

    @admin.action(description="Send selected failed emails again", permissions=["change"])
    def send_again(self, request, queryset):
        requeued = outbox.send_again(list(queryset.values_list("pk", flat=True)))
        skipped = queryset.count() - requeued
        if requeued:
            self.message_user(
                request, f"Queued {requeued} email{'s' if requeued != 1 else ''} again.", messages.SUCCESS
            )
        if skipped:
            self.message_user(
                request, f"{skipped} not failed (sent, or still being tried) and left as they are.", messages.WARNING
            )
