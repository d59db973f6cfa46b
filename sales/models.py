"""Enterprise "Contact sales" requests: a team's Owner asks for a contract, staff follow the lead up in the admin."""

from django.conf import settings
from django.db import models

from accounts.models import Team


class Lead(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "New"
        CONTACTED = "contacted", "Contacted"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="sales_leads")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # What the team tells us.
    company = models.CharField(max_length=120)
    expected_monthly_requests = models.PositiveBigIntegerField(help_text="Billable API requests per month.")
    expected_vehicles = models.PositiveIntegerField(help_text="Vehicles the team expects to connect.")
    message = models.TextField(max_length=3000, blank=True)
    # Staff follow-up.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW, db_index=True)
    staff_notes = models.TextField(blank=True, help_text="Staff only; never shown to the team.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.company} ({self.get_status_display()})"
