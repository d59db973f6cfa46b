"""The Garage program: early-stage startups apply, staff review, and acceptance starts a grant (billing.Grant).

An application moves draft → submitted → under review → accepted | rejected, or is withdrawn by
its team while open; an accepted application's grant ending makes it expired. A team has at most
one open application (a partial unique constraint), and a team that had a grant cannot apply again.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Team
from billing.models import Grant

OPEN_STATUSES = ("draft", "submitted", "under_review")


class GarageApplication(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        UNDER_REVIEW = "under_review", "Under review"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"
        EXPIRED = "expired", "Expired"

    class Stage(models.TextChoices):
        PRE_SEED = "pre_seed", "Pre-seed"
        SEED = "seed", "Seed"
        SERIES_A = "series_a", "Series A"
        OTHER = "other", "Other"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="garage_applications")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    # What the startup tells us (blank while a draft; the submit form requires them).
    company_name = models.CharField(max_length=120, blank=True)
    website = models.URLField(max_length=200, blank=True)
    founded_on = models.DateField(null=True, blank=True)
    stage = models.CharField(max_length=16, choices=Stage.choices, blank=True)
    funding_raised_usd = models.PositiveBigIntegerField(null=True, blank=True, help_text="Whole US dollars.")
    team_size = models.PositiveIntegerField(null=True, blank=True)
    app_description = models.TextField(max_length=2000, blank=True, help_text="The app you are building.")
    use_case = models.TextField(max_length=2000, blank=True)
    expected_vehicles = models.PositiveIntegerField(null=True, blank=True, help_text="Vehicles in 3 months.")
    contact_name = models.CharField(max_length=120, blank=True)
    contact_email = models.EmailField(blank=True)
    # The lifecycle.
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # Staff review.
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    internal_notes = models.TextField(blank=True, help_text="Staff only; never shown to the team.")
    decision_reason = models.TextField(blank=True, help_text="Shown to the team with a rejection.")
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    grant = models.OneToOneField(Grant, null=True, blank=True, on_delete=models.PROTECT, related_name="application")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["team"], condition=Q(status__in=OPEN_STATUSES), name="garage_one_open_application_per_team"
            ),
        ]

    def __str__(self):
        return f"{self.company_name or self.team} ({self.get_status_display()})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class GarageReviewEvent(models.Model):
    """The application's audit trail: every status change, assignment and note, by whom."""

    application = models.ForeignKey(GarageApplication, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=32)
    before = models.CharField(max_length=16, blank=True)
    after = models.CharField(max_length=16, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        """How the admin's history names a row: what happened, by whom, when."""
        who = self.actor.email if self.actor_id else "the system"
        change = f" ({self.before} → {self.after})" if self.before or self.after else ""
        return f"{self.action.replace('_', ' ')}{change} by {who}, {self.created_at:%Y-%m-%d %H:%M} UTC"


class ProgramDetails(models.Model):
    """What accepted teams see in the Garage tab, edited by staff in the admin (one row)."""

    support_contact = models.CharField(
        max_length=200, blank=True, help_text="Who accepted teams write to, e.g. garage@ignition.example."
    )
    booking_url = models.URLField(blank=True, help_text="Where accepted teams book their 1:1 sessions.")
    test_fleet = models.TextField(blank=True, help_text="How to reach the test fleet (shown to accepted teams).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "program details"

    def __str__(self):
        return "Garage program details"

    @classmethod
    def current(cls) -> "ProgramDetails":
        return cls.objects.order_by("pk").first() or cls()
