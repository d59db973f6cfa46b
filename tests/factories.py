import time
from io import StringIO

import factory
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core.management import call_command

from accounts.models import Application, Membership, Team, User
from accounts.roles import Role

PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"dev{n}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified(obj, create, extracted, **kwargs):
        obj.save()
        if create and extracted is not False:
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class ApplicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Application

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"App {n}")


# A complete Garage program application, as the Garage tab's form posts it.
GARAGE_APPLICATION = {
    "company_name": "Acme Mobility Inc.",
    "website": "https://acme.example",
    "founded_on": "2024-03-01",
    "stage": "seed",
    "funding_raised_usd": "750000",
    "team_size": "6",
    "app_description": "A charging planner for delivery fleets.",
    "use_case": "We read battery level and location to plan charging stops.",
    "expected_vehicles": "400",
    "contact_name": "Ada Founder",
    "contact_email": "ada@acme.example",
}


def run_seed_demo(*args) -> str:
    """`manage.py seed_demo` with these arguments; what it printed."""
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def totp_code(secret: str) -> str:
    """The authenticator app's code for now. allauth accepts only the current 30-second window
    (MFA_TOTP_TOLERANCE 0), so near a window's end this waits for the next one rather than race it."""
    if 30 - time.time() % 30 < 5:
        time.sleep(30 - time.time() % 30)
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))
