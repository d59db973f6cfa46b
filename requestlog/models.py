"""The request log: one row per vehicle API request a team's applications made, for the dashboard's Logs tab.

Rows are written by each process's thread about once a second (requestlog/buffer.py), kept for
`REQUEST_LOG_RETENTION_DAYS` and purged by beat. The log explains usage; it is not what is billed: billable counts
are billing.UsageEvent rows, written durably before the vehicle is called. Applications and vehicles are kept by
id, not by foreign key, so a deleted application or vehicle leaves its history readable and deleting one never
has to touch millions of log rows.
"""

from django.db import models

from accounts.models import Team


class ApiRequest(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    occurred_at = models.DateTimeField()
    request_id = models.CharField(max_length=64)  # the SC-Request-Id the caller got (a batch's items have their own)
    batch_request_id = models.CharField(max_length=64, blank=True)  # a batch item's: the batch request's own id
    application_key = models.PositiveBigIntegerField(default=0)  # the application's id; 0: none
    vehicle_key = models.PositiveBigIntegerField(default=0)  # the vehicle's id; 0: the path names none
    method = models.CharField(max_length=8)
    endpoint = models.CharField(max_length=64)  # the path template, as billing names it: /vehicles/{id}/odometer
    path = models.CharField(max_length=255)
    status = models.PositiveSmallIntegerField()
    error_type = models.CharField(max_length=32, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    billable = models.BooleanField(default=False)  # counted as a billable request: charged at `price_cents`
    price_cents = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            # The tab: a team's requests, newest first (keyset pagination on occurred_at, id); the purge, team by team.
            models.Index(fields=["team", "-occurred_at", "-id"], name="api_request_team_recent"),
            # A request by its SC-Request-Id: the team's search, the detail page, staff in the admin.
            models.Index(fields=["request_id"], name="api_request_request_id"),
            # A batch's requests; only batch items are in it, so other requests never write to it.
            models.Index(
                fields=["batch_request_id"],
                name="api_request_batch_items",
                condition=~models.Q(batch_request_id=""),
            ),
        ]  # and no more: every API request inserts a row

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"

    @property
    def status_class(self) -> str:
        return f"{self.status // 100}xx"
