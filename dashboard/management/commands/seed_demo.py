import json

from django.core.management.base import BaseCommand

from accounts.demo import DEMO_CLIENT_ID, seed_demo
from accounts.models import Application, Team, User
from billing.demo import seed_demo_usage, seed_enterprise_demo
from requestlog.demo import seed_demo_log
from vehicles.demo import connect_demo_vehicles, seed_demo_owner


class Command(BaseCommand):
    help = (
        "Create (or repair) the demo developer, staff user, application, simulated driver with connected vehicles, "
        "three weeks of usage and its request log, and an Enterprise team on an invoice-paid contract with an "
        "issued invoice. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the demo credentials as JSON, for scripts.")

    def handle(self, *args, **options):
        developer = seed_demo()
        team = Team.objects.get(name=developer.team, memberships__user__email=developer.email)
        owner = seed_demo_owner(team=team)
        application = Application.objects.get(client_id=DEMO_CLIENT_ID)
        vehicle_ids = connect_demo_vehicles(application=application)
        seed_demo_usage(team=team, application=application, vehicle_ids=vehicle_ids)
        seed_demo_log(team=team, application=application)
        enterprise = seed_enterprise_demo(
            user=User.objects.get(email=developer.email), actor=User.objects.get(email=developer.staff_email)
        )
        if options["json"]:
            self.stdout.write(json.dumps(_as_json(developer, owner, enterprise), indent=2))
            return
        self.stdout.write(
            self.style.SUCCESS("Demo ready.")
            + f"\n  Dashboard:  {developer.login_url}"
            + f"\n  Email:      {developer.email}"
            + f"\n  Password:   {developer.password}"
            + f"\n  Client id:  {developer.client_id}"
            + f"\n  Secret:     {developer.client_secret}"
            + f"\n  Driver login for Connect ({owner.make.title()}): {owner.email} / {owner.password}"
            + f"\n  Enterprise demo team: {enterprise.team} (switch team in the dashboard)"
        )


def _as_json(developer, owner, enterprise) -> dict:
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
        "enterprise": {"team": enterprise.team, "contract": enterprise.contract, "invoice": enterprise.invoice},
    }
