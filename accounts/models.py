import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower

from accounts.roles import Role


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    """An email-only account: no username."""

    username = None
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self):
        return self.email


class Team(models.Model):
    """The billing account. Everything a developer creates belongs to a team."""

    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self):
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="membership_unique_team_user")]
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.role})"


class Invitation(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        DECLINED = "declined"
        REVOKED = "revoked"
        EXPIRED = "expired"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices)
    # The link's token is a credential: only its keyed hash is stored.
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    responded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "team",
                condition=models.Q(status="pending"),
                name="invitation_one_pending_per_team_email",
            )
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.email} → {self.team} ({self.status})"


class Application(models.Model):
    """A developer's app: an OAuth client of the vehicle API."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="applications")
    name = models.CharField(max_length=100)
    client_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    editors = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="edited_applications",
        help_text="Editors assigned to this app",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name


class ClientSecret(models.Model):
    """One client secret of an application. Several are valid at once only during a rotation's grace period."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="client_secrets")
    secret_hash = models.CharField(max_length=64, unique=True)  # HMAC-SHA256 hex with CREDENTIAL_PEPPER
    hint = models.CharField(max_length=8)  # last characters, to tell secrets apart in the UI
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # null: valid until rotated

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"secret ••••{self.hint}"


class ManagementToken(models.Model):
    """The application management token (one per application; rotation replaces it at once)."""

    application = models.OneToOneField(Application, on_delete=models.CASCADE, related_name="management_token")
    token_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"management token ••••{self.hint}"


class RedirectURI(models.Model):
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="redirect_uris")
    uri = models.CharField(max_length=2000)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["application", "uri"], name="redirect_uri_unique_per_app"),
            models.UniqueConstraint(
                fields=["application"], condition=models.Q(is_default=True), name="redirect_uri_one_default"
            ),
        ]

    def __str__(self):
        return self.uri


class AuditEvent(models.Model):
    """Append-only record of who changed what in a team."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.action} {self.target}"


class PersonalAccessToken(models.Model):
    """A user's token for the dashboard's JSON API in one team: it acts as the user, with their current role there."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="personal_access_tokens")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)  # HMAC-SHA256 hex with CREDENTIAL_PEPPER
    hint = models.CharField(max_length=8)  # last characters, to tell tokens apart in the UI
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)  # refreshed at most once a minute
    expires_at = models.DateTimeField(null=True, blank=True)  # null: never expires
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "team", "revoked_at"], name="pat_user_team_revoked")]

    def __str__(self):
        return f"{self.name} (••••{self.hint})"
