"""Staff review of Garage applications. Every decision, assignment and note goes through garage.services,
which lock the application, write its GarageReviewEvent and email the team; the admin never edits the
lifecycle fields itself, and nothing the startup sent is editable here."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import F, OuterRef, Subquery
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.models import BillingPeriod, Grant
from dashboard.admin_actions import apply_to_each, confirmation_page
from garage import services
from garage.models import GarageApplication, GarageReviewEvent, ProgramDetails

DECIDABLE = (GarageApplication.Status.SUBMITTED, GarageApplication.Status.UNDER_REVIEW)
MAX_ALLOWANCE = 2_147_483_647  # a PositiveIntegerField's ceiling


class ApproveForm(forms.Form):
    request_allowance = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ALLOWANCE,
        help_text="Free billable requests per billing period; empty for the program default.",
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="Staff only.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["request_allowance"].initial = settings.GARAGE_GRANT_REQUESTS


class RejectForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), help_text="Shown to the team in the email.")


DECISIONS = {
    "approve": {"form": ApproveForm, "title": "Approve Garage applications", "button": "Approve", "done": "Approved"},
    "reject": {"form": RejectForm, "title": "Reject Garage applications", "button": "Reject", "done": "Rejected"},
}


def _this_period(field: str) -> Subquery:
    now = timezone.now()
    periods = BillingPeriod.objects.filter(team_id=OuterRef("team_id"), start__lte=now, end__gt=now)
    return Subquery(periods.values(field)[:1])


def _named(application: GarageApplication) -> str:
    return f"“{application.company_name or application.team}” (#{application.pk})"


class GarageReviewEventInline(admin.TabularInline):
    model = GarageReviewEvent
    extra = 0
    can_delete = False
    max_num = 0
    fields = ["created_at", "actor", "action", "before", "after", "note"]
    readonly_fields = fields
    verbose_name_plural = "history"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # Whoever may see the application sees its history.
        user = request.user
        return user.has_perm("garage.view_garageapplication") or user.has_perm("garage.change_garageapplication")


APPLICANT = services.APPLICANT_FIELDS


@admin.register(GarageApplication)
class GarageApplicationAdmin(admin.ModelAdmin):
    list_display = ["company", "team", "status", "stage", "submitted_at", "age_in_days", "reviewer", "plan_name",
                    "usage_this_period"]  # fmt: skip
    list_filter = ["status", "stage", ("reviewer", admin.RelatedOnlyFieldListFilter), "submitted_at"]
    search_fields = ["company_name", "team__name", "contact_email", "website"]
    list_select_related = ["team", "reviewer"]
    ordering = [F("submitted_at").asc(nulls_last=True), "id"]
    actions = ["approve", "reject", "assign_to_me"]
    inlines = [GarageReviewEventInline]
    change_form_template = "admin/garage/application_change_form.html"
    fieldsets = [
        (
            "Review",
            {
                "fields": [
                    "team",
                    "status",
                    "submitted_at",
                    "age_in_days",
                    "reviewer",
                    "decided_at",
                    "decided_by",
                    "decision_reason",
                    "grant_link",
                ]
            },
        ),  # fmt: skip
        # As sent, but the funding in dollars: "$750,000" rather than 750000.
        ("What the startup sent", {"fields": [f if f != "funding_raised_usd" else "funding" for f in APPLICANT]}),
        ("Billing", {"fields": ["plan_name", "usage_this_period"]}),
        ("Staff notes", {"fields": ["internal_notes"]}),
        ("Record", {"fields": ["created_by", "created_at", "updated_at"], "classes": ["collapse"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    @admin.display(description="funding raised", ordering="funding_raised_usd")
    def funding(self, application: GarageApplication) -> str:
        amount = application.funding_raised_usd
        return "—" if amount is None else f"${amount:,}"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                current_plan_name=F("team__subscription__plan__name"),
                period_requests_used=_this_period("requests_used"),
                period_request_allowance=_this_period("request_allowance"),
            )
        )

    def has_add_permission(self, request):
        return False  # teams apply from the dashboard

    def has_delete_permission(self, request, obj=None):
        return False  # the history is the record of what was decided

    def save_model(self, request, obj, form, change):
        # Every field is read-only: a save would only rewrite the row from a possibly stale copy.
        pass

    # --- computed columns -------------------------------------------------------------------------------------

    @admin.display(description="company", ordering="company_name")
    def company(self, application):
        return application.company_name or f"(draft by {application.team})"

    @admin.display(description="age (days)")
    def age_in_days(self, application):
        return (timezone.now() - application.submitted_at).days if application.submitted_at else None

    @admin.display(description="plan", ordering="current_plan_name")
    def plan_name(self, application):
        return getattr(application, "current_plan_name", None) or "Free (not started)"

    @admin.display(description="requests this period")
    def usage_this_period(self, application):
        used = getattr(application, "period_requests_used", None)
        if used is None:
            return "no period yet"
        allowance = application.period_request_allowance
        return f"{used:,} / {allowance:,}" if allowance is not None else f"{used:,} / no limit"

    @admin.display(description="grant")
    def grant_link(self, application):
        grant = application.grant
        if grant is None:
            return None
        text = (
            f"#{grant.pk}: {grant.request_allowance:,} requests per period, "
            f"{grant.starts_at:%Y-%m-%d} – {grant.ends_at:%Y-%m-%d} ({grant.get_status_display()})"
        )
        if self.admin_site.is_registered(Grant):
            return format_html('<a href="{}">{}</a>', reverse("admin:billing_grant_change", args=[grant.pk]), text)
        return text

    # --- change page ------------------------------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        application = self.get_object(request, unquote(object_id))
        can_change = application is not None and self.has_change_permission(request, application)
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "can_note": can_change,
            "can_decide": can_change and application.status in DECIDABLE,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/approve/", view(self.approve_view), name="garage_garageapplication_approve"),
            path("<path:object_id>/reject/", view(self.reject_view), name="garage_garageapplication_reject"),
            path("<path:object_id>/note/", view(self.note_view), name="garage_garageapplication_note"),
            *super().get_urls(),
        ]

    def approve_view(self, request, object_id):
        return self._decide_one(request, object_id, "approve")

    def reject_view(self, request, object_id):
        return self._decide_one(request, object_id, "reject")

    def note_view(self, request, object_id):
        application = self._changeable(request, object_id)
        if request.method == "POST":
            try:
                services.add_note(application.pk, note=request.POST.get("note", ""), actor=request.user)
            except services.GarageError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, "Note added.", messages.SUCCESS)
        return redirect("admin:garage_garageapplication_change", application.pk)

    def _changeable(self, request, object_id) -> GarageApplication:
        application = self.get_object(request, unquote(object_id))
        if application is None:
            raise Http404("No such application.")
        if not self.has_change_permission(request, application):
            raise PermissionDenied
        return application

    def _decide_one(self, request, object_id, kind):
        application = self._changeable(request, object_id)
        response = self._decide(request, GarageApplication.objects.filter(pk=application.pk), kind)
        return response or redirect("admin:garage_garageapplication_change", application.pk)

    # --- actions ----------------------------------------------------------------------------------------------

    @admin.action(description="Approve selected applications…", permissions=["change"])
    def approve(self, request, queryset):
        return self._decide(request, queryset, "approve", action="approve")

    @admin.action(description="Reject selected applications…", permissions=["change"])
    def reject(self, request, queryset):
        return self._decide(request, queryset, "reject", action="reject")

    @admin.action(description="Assign selected applications to me", permissions=["change"])
    def assign_to_me(self, request, queryset):
        self._each(
            request, queryset, "Assigned", lambda pk: services.assign(pk, reviewer=request.user, actor=request.user)
        )

    def _decide(self, request, queryset, kind, action=None):
        """The confirmation page, or (once confirmed with a valid form) the decision for each application."""
        decision = DECISIONS[kind]
        form = decision["form"](request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            if kind == "approve":
                decide = lambda pk: services.accept(  # noqa: E731
                    pk, reviewer=request.user, request_allowance=data["request_allowance"], note=data["note"]
                )
            else:
                decide = lambda pk: services.reject(pk, reviewer=request.user, reason=data["reason"])  # noqa: E731
            self._each(request, queryset, decision["done"], decide)
            return None
        return confirmation_page(
            self,
            request,
            action=action,
            title=decision["title"],
            explanation=f"{decision['button']} these applications? Each is decided on its own; one that cannot be "
            "is reported and the others go on.",
            form=form,
            items=((a.pk, f"{a} — {a.team}") for a in queryset.select_related("team").order_by("submitted_at", "pk")),
            submit_label=decision["button"],
        )

    def _each(self, request, queryset, done_label, change):
        """Apply `change` to each application; one that cannot be changed is named and the rest go on."""
        applications = queryset.order_by("submitted_at", "pk")
        apply_to_each(self, request, applications, change, refused=services.GarageError, name=_named,
                      done_label=done_label, noun="application")  # fmt: skip


@admin.register(ProgramDetails)
class ProgramDetailsAdmin(admin.ModelAdmin):
    """One row: what accepted teams see in the Garage tab."""

    list_display = ["__str__", "support_contact", "booking_url", "updated_at"]
    fields = ["support_contact", "booking_url", "test_fleet", "updated_at"]
    readonly_fields = ["updated_at"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not ProgramDetails.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
