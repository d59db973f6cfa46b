"""Simulated brands' owners and vehicles, and the OAuth grants that connect them to applications.

Tokens and codes are credentials: only their keyed hashes (accounts.credentials) are stored.
"""

import uuid

from django.db import models

from accounts.models import Application, Team


class Mode(models.TextChoices):
    LIVE = "live"
    TEST = "test"
    SIMULATED = "simulated"


class Engine(models.TextChoices):
    ICE = "ICE", "Combustion"
    BEV = "BEV", "Battery electric"
    PHEV = "PHEV", "Plug-in hybrid"


class SimulatedOwner(models.Model):
    """A driver's login at a simulated brand: what they type on Connect's brand sign-in page."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)  # GET /v2.0/user id
    make = models.CharField(max_length=40)  # upper-case brand, e.g. "TESLA"
    email = models.EmailField()
    password = models.CharField(max_length=128)  # Django password hash; owner sign-ins are rare
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.LIVE)
    # The developer team that created this owner in the Simulator (null: seeded demo owners).
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="simulated_owners")
    # Test mode only: the application whose Connect sign-in created this owner (each application gets its own
    # test owners and vehicles), and the last such sign-in (with API use, what keeps the owner from the purge).
    application = models.ForeignKey(Application, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    last_signed_in_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["make", "email", "mode"],
                condition=~models.Q(mode=Mode.TEST),
                name="owner_unique_per_brand_mode",
            ),
            models.UniqueConstraint(
                fields=["application", "make", "email"],
                condition=models.Q(mode=Mode.TEST),
                name="test_owner_unique_per_application",
            ),
        ]

    def __str__(self):
        return f"{self.email} at {self.make} ({self.mode})"


class SimulatedVehicle(models.Model):
    """One simulated vehicle and the state that persists between requests (lock, charging, injected failure)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)  # the API's vehicle id
    owner = models.ForeignKey(SimulatedOwner, on_delete=models.CASCADE, related_name="vehicles")
    make = models.CharField(max_length=40)
    model = models.CharField(max_length=60)
    year = models.PositiveSmallIntegerField()
    vin = models.CharField(max_length=17, db_index=True)
    engine = models.CharField(max_length=4, choices=Engine.choices)
    seed = models.BigIntegerField()  # drives the deterministic simulation
    created_at = models.DateTimeField()  # simulation time zero
    is_locked = models.BooleanField(default=True)
    is_plugged_in = models.BooleanField(default=False)
    is_charging = models.BooleanField(default=False)
    charge_limit_percent = models.PositiveSmallIntegerField(default=80)
    # A charge session: the battery rises from `charge_from` (a fraction) since `charging_since`.
    charging_since = models.DateTimeField(null=True, blank=True)
    charge_from = models.FloatField(null=True, blank=True)
    # Shifts the drain curve so the level carries on from where the last charge session left it.
    battery_adjust = models.FloatField(default=0.0)
    # "TYPE:CODE" (e.g. "VEHICLE_STATE:ASLEEP") makes every data request fail with that error.
    failure = models.CharField(max_length=64, blank=True)

    def __str__(self):
        return f"{self.year} {self.make} {self.model} ({self.vin})"


class AuthorizationCode(models.Model):
    """A Connect result waiting to be exchanged at /oauth/token (10 minutes, single use)."""

    code_hash = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(SimulatedOwner, on_delete=models.CASCADE, related_name="+")
    vehicles = models.ManyToManyField(SimulatedVehicle, related_name="+")
    scopes = models.JSONField(default=list)
    redirect_uri = models.CharField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    # What the exchange issued: revoked if the code is presented again (RFC 6749 §4.1.2).
    grant = models.ForeignKey("Grant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")


class Grant(models.Model):
    """An owner's consent for one application to reach some vehicles with some scopes."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="grants")
    owner = models.ForeignKey(SimulatedOwner, on_delete=models.CASCADE, related_name="grants")
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the code it came from was exchanged again: every token of the grant, even refreshed ones, is dead.
    revoked_at = models.DateTimeField(null=True, blank=True)


class Connection(models.Model):
    """A vehicle connected to an application through a grant.

    Revoked by disconnect (or the management API); the grant's tokens then stop working for it.
    """

    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="connections")
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="connections")
    vehicle = models.ForeignKey(SimulatedVehicle, on_delete=models.CASCADE, related_name="connections")
    connected_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_request_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["application", "-connected_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["grant", "vehicle"], condition=models.Q(revoked_at__isnull=True), name="connection_one_active"
            )
        ]


class AccessToken(models.Model):
    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="access_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()


class RefreshToken(models.Model):
    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="refresh_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)  # rotation: dies 1 minute after first use


class IdempotentRequest(models.Model):
    """A vehicle API request sent with an `Idempotency-Key`, and its successful answer, kept for 24 hours.

    A retry with the same key gets the stored answer back (replayed: the vehicle isn't called and nothing is
    counted again); the same key on a different request, or while the first is still running, is refused.
    """

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    key_hash = models.CharField(max_length=64)
    fingerprint = models.CharField(max_length=64)  # method, path and body of the request the key was first used for
    created_at = models.DateTimeField(db_index=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)  # empty while the request runs
    body = models.BinaryField(blank=True, default=b"")
    headers = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["application", "key_hash"], name="idempotent_request_unique_key")
        ]
