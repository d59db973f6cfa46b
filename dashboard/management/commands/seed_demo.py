import json

from django.core.management.base import BaseCommand

from accounts.demo import seed_demo
from accounts.models import Team
from vehicles.demo import seed_demo_owner


class Command(BaseCommand):
    help = "Create (or repair) the demo developer, staff user, application and simulated driver. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the demo credentials as JSON, for scripts.")

    def handle(self, *args, **options):
        developer = seed_demo()
        owner = seed_demo_owner(team=Team.objects.get(name=developer.team, memberships__user__email=developer.email))
        if options["json"]:
            self.stdout.write(json.dumps(_as_json(developer, owner), indent=2))
            return
        self.stdout.write(
            self.style.SUCCESS("Demo ready.")
            + f"\n  Dashboard:  {developer.login_url}"
            + f"\n  Email:      {developer.email}"
            + f"\n  Password:   {developer.password}"
            + f"\n  Client id:  {developer.client_id}"
            + f"\n  Secret:     {developer.client_secret}"
            + f"\n  Driver login for Connect ({owner.make.title()}): {owner.email} / {owner.password}"
        )


def _as_json(developer, owner) -> dict:
    return {
        "developer": {"email": developer.email, "password": developer.password, "team": developer.team},
        "staff": {"email": developer.staff_email, "password": developer.staff_password},
        "application": {
            "client_id": developer.client_id,
            "client_secret": developer.client_secret,
            "redirect_uri": developer.redirect_uri,
            "management_token": developer.management_token,
        },
        "owner": {"email": owner.email, "password": owner.password, "make": owner.make},
        "login_url": developer.login_url,
    }
