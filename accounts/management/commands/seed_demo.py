import json as jsonlib

from django.core.management.base import BaseCommand

from accounts.demo import seed_demo


class Command(BaseCommand):
    help = "Create (or repair) the demo developer, team and application. Safe to run repeatedly."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the demo credentials as JSON, for scripts.")

    def handle(self, *args, **options):
        credentials = seed_demo()
        if options["json"]:
            self.stdout.write(jsonlib.dumps(credentials.as_dict(), indent=2))
            return
        self.stdout.write(
            self.style.SUCCESS("Demo ready.")
            + f"\n  Dashboard:  {credentials.login_url}"
            + f"\n  Email:      {credentials.email}"
            + f"\n  Password:   {credentials.password}"
            + f"\n  Client id:  {credentials.client_id}"
            + f"\n  Secret:     {credentials.client_secret}"
        )
