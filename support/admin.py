"""Staff answer support tickets in the admin. A reply or a close goes through support.services, which
write the TicketMessage (the record of who did what) and email the opener; the ticket itself is read-only."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path

from support import services
from support.models import BODY_MAX, Ticket, TicketMessage


class ReplyForm(forms.Form):
    body = forms.CharField(max_length=BODY_MAX, widget=forms.Textarea(attrs={"rows": 5, "cols": 60}))


class TicketMessageInline(admin.TabularInline):
    model = TicketMessage
    extra = 0
    max_num = 0
    can_delete = False
    fields = ["created_at", "author", "from_staff", "kind", "body"]
    readonly_fields = fields
    verbose_name_plural = "thread"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        user = request.user
        return user.has_perm("support.view_ticket") or user.has_perm("support.change_ticket")


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ["id", "subject", "team", "channel", "status", "opened_by", "created_at", "updated_at"]
    list_display_links = ["id", "subject"]
    list_filter = ["status", "channel", "created_at"]
    search_fields = ["subject", "team__name"]
    list_select_related = ["team", "opened_by"]
    actions = ["close_selected"]
    inlines = [TicketMessageInline]
    change_form_template = "support/admin/ticket_change_form.html"
    fields = ["team", "opened_by", "channel", "status", "subject", "body", "created_at", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # teams open tickets from the dashboard

    def has_delete_permission(self, request, obj=None):
        return False  # the thread is the record of what was said

    def save_model(self, request, obj, form, change):
        pass  # every field is read-only; replies go through the reply form

    def change_view(self, request, object_id, form_url="", extra_context=None):
        ticket = self.get_object(request, unquote(object_id))
        can_reply = ticket is not None and self.has_change_permission(request, ticket)
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "can_reply": can_reply and ticket.status != Ticket.Status.CLOSED,
            "reply_form": ReplyForm(),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/reply/", view(self.reply_view), name="support_ticket_reply"),
            *super().get_urls(),
        ]

    def reply_view(self, request, object_id):
        """POST `body`: reply as staff (the opener is emailed)."""
        ticket = self.get_object(request, unquote(object_id))
        if ticket is None:
            raise Http404("No such ticket.")
        if not self.has_change_permission(request, ticket):
            raise PermissionDenied
        if request.method == "POST":
            form = ReplyForm(request.POST)
            if not form.is_valid():
                self.message_user(request, "Write the reply first (up to 5,000 characters).", messages.ERROR)
            else:
                try:
                    services.reply_as_staff(ticket.pk, request.user, form.cleaned_data["body"])
                except services.SupportError as error:
                    self.message_user(request, str(error), messages.ERROR)
                else:
                    self.message_user(request, "Reply sent to the ticket's opener.", messages.SUCCESS)
        return redirect("admin:support_ticket_change", ticket.pk)

    @admin.action(description="Close selected tickets", permissions=["change"])
    def close_selected(self, request, queryset):
        for ticket in queryset:
            services.close_ticket(ticket.pk, actor=request.user, by_staff=True)
        count = queryset.count()
        self.message_user(request, f"Closed {count} ticket{'s' if count != 1 else ''}.", messages.SUCCESS)
