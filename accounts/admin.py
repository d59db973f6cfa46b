from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import Application, AuditEvent, Invitation, Membership, RedirectURI, Team, User
from dashboard.admin_actions import ReadOnlyAdmin


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "is_active", "is_staff", "date_joined", "last_login"]
    search_fields = ["email"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["first_name", "last_name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class ReadOnlyAuditInline(admin.TabularInline):
    model = AuditEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "actor", "action", "target", "data"]
    readonly_fields = fields
    ordering = ["-created_at"]
    max_num = 0


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name", "memberships__user__email"]
    ordering = ["name", "id"]  # a stable order for the list and for the team search boxes of other admins
    inlines = [MembershipInline, ReadOnlyAuditInline]


class RedirectURIInline(admin.TabularInline):
    model = RedirectURI
    extra = 0


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "client_id", "created_at"]
    search_fields = ["name", "client_id", "team__name"]
    readonly_fields = ["client_id", "created_at", "created_by"]
    list_select_related = ["team"]
    inlines = [RedirectURIInline]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "team", "role", "status", "created_at", "expires_at"]
    list_filter = ["status", "role"]
    search_fields = ["email", "team__name"]
    exclude = ["token_hash"]
    readonly_fields = ["responded_at", "responded_by", "invited_by"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Append-only: staff read it, nobody edits it."""

    list_display = ["created_at", "team", "actor", "action", "target"]
    list_filter = ["action"]
    search_fields = ["team__name", "actor__email", "target"]
