"""The demo developer `make run` seeds, so a newcomer can log in at once. Never for production data."""

from dataclasses import asdict, dataclass

from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import transaction
from django.urls import reverse

from accounts.applications import issue_client_secret, set_management_token
from accounts.audit import record_audit
from accounts.credentials import hash_secret
from accounts.models import Application, ClientSecret, ManagementToken, Membership, RedirectURI, Team, User
from accounts.roles import Role

DEMO_EMAIL = "demo@ignition.localhost"
DEMO_PASSWORD = "ignition-demo-drive"
DEMO_STAFF_EMAIL = "staff@ignition.localhost"
DEMO_STAFF_PASSWORD = "ignition-demo-staff"
DEMO_TEAM = "Demo Motors"
DEMO_APPLICATION = "Demo fleet app"
# Earlier demos registered this, which lands on nothing; reseeding replaces it with Ignition's callback page.
FORMER_DEMO_REDIRECT_URI = "http://localhost:8000/callback"


def demo_redirect_uri() -> str:
    """Ignition's own callback page (the Connect tester's, vehicles/connect/tester.py), on SITE_ROOT."""
    return settings.SITE_ROOT.rstrip("/") + reverse("connect_test_callback")


# Fixed demo credentials so scripts (and the SDK examples) can use them across re-seeds.
DEMO_CLIENT_ID = "7b1e5f0a-4a57-4d0e-9d8b-1d3a5c9e2f10"
DEMO_CLIENT_SECRET = "sk_demo_not_secret_0f4c2b7e9a1d"
DEMO_MANAGEMENT_TOKEN = "amt_demo_not_secret_5e8d1c3b7a2f"


@dataclass(frozen=True)
class DemoCredentials:
    email: str
    password: str
    team: str
    client_id: str
    client_secret: str
    management_token: str
    redirect_uri: str
    login_url: str
    staff_email: str
    staff_password: str

    def as_dict(self) -> dict:
        return asdict(self)


def _verified_user(email: str, password: str, **flags) -> User:
    user, created = User.objects.get_or_create(email=email, defaults=flags)
    if created or not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    EmailAddress.objects.update_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
    return user


@transaction.atomic
def seed_demo() -> DemoCredentials:
    """Create or repair the demo developer, staff user, team and application. Idempotent."""
    user = _verified_user(DEMO_EMAIL, DEMO_PASSWORD)
    # Staff for the back office; the admin still asks them to set up two-factor authentication.
    _verified_user(DEMO_STAFF_EMAIL, DEMO_STAFF_PASSWORD, is_staff=True, is_superuser=True)
    team = Team.objects.filter(name=DEMO_TEAM, memberships__user=user).first()
    if team is None:
        team = Team.objects.create(name=DEMO_TEAM, created_by=user)
        record_audit(team=team, actor=user, action="team.created", target=team.name, seeded=True)
    Membership.objects.update_or_create(team=team, user=user, defaults={"role": Role.OWNER})
    application, _ = Application.objects.get_or_create(
        client_id=DEMO_CLIENT_ID, defaults={"team": team, "name": DEMO_APPLICATION, "created_by": user}
    )
    # Re-validate the demo secret even if it was rotated away (its row may still exist, expired).
    demo_secret = ClientSecret.objects.filter(application=application, secret_hash=hash_secret(DEMO_CLIENT_SECRET))
    if not demo_secret.update(expires_at=None):
        issue_client_secret(application, DEMO_CLIENT_SECRET)
    if not ManagementToken.objects.filter(
        application=application, token_hash=hash_secret(DEMO_MANAGEMENT_TOKEN)
    ).exists():
        set_management_token(application, DEMO_MANAGEMENT_TOKEN)
    redirect_uri = demo_redirect_uri()
    application.redirect_uris.filter(uri=FORMER_DEMO_REDIRECT_URI).delete()
    RedirectURI.objects.get_or_create(
        application=application,
        uri=redirect_uri,
        defaults={"is_default": not application.redirect_uris.filter(is_default=True).exists()},
    )
    if not application.redirect_uris.filter(is_default=True).exists():  # the former one was the default
        application.redirect_uris.filter(uri=redirect_uri).update(is_default=True)
    return DemoCredentials(
        email=DEMO_EMAIL,
        password=DEMO_PASSWORD,
        team=team.name,
        client_id=str(application.client_id),
        client_secret=DEMO_CLIENT_SECRET,
        management_token=DEMO_MANAGEMENT_TOKEN,
        redirect_uri=redirect_uri,
        login_url=f"{settings.SITE_ROOT}/accounts/login/",
        staff_email=DEMO_STAFF_EMAIL,
        staff_password=DEMO_STAFF_PASSWORD,
    )
