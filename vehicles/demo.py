"""The demo's simulated driver: a Tesla owner login with two vehicles, usable in live-mode Connect."""

from dataclasses import dataclass

from django.contrib.auth.hashers import make_password
from django.db import transaction

from accounts.models import Application, Team
from vehicles import simulator
from vehicles.models import Connection, Grant, Mode, SimulatedOwner
from vehicles.scopes import PERMISSIONS

DEMO_OWNER_MAKE = "TESLA"
DEMO_OWNER_EMAIL = "driver@tesla.example"
DEMO_OWNER_PASSWORD = "ignition-demo-owner"
DEMO_VEHICLES = [("Model 3", 2022), ("Model Y", 2023)]


@dataclass(frozen=True)
class DemoOwner:
    email: str
    password: str
    make: str
    vehicle_count: int


@transaction.atomic
def seed_demo_owner(*, team: Team) -> DemoOwner:
    """Create or repair the demo driver and their vehicles. Idempotent."""
    owner = SimulatedOwner.objects.filter(make=DEMO_OWNER_MAKE, email=DEMO_OWNER_EMAIL, mode=Mode.LIVE).first()
    if owner is None:
        owner = simulator.create_owner(
            team=team, make=DEMO_OWNER_MAKE, email=DEMO_OWNER_EMAIL, password=DEMO_OWNER_PASSWORD
        )
    elif not simulator.authenticate_owner(
        make=DEMO_OWNER_MAKE, email=DEMO_OWNER_EMAIL, password=DEMO_OWNER_PASSWORD, mode=Mode.LIVE
    ):
        owner.password = make_password(DEMO_OWNER_PASSWORD)
        owner.save(update_fields=["password"])
    if not owner.vehicles.exists():
        for model, year in DEMO_VEHICLES:
            simulator.create_vehicle(owner=owner, model=model, year=year)
    return DemoOwner(
        email=DEMO_OWNER_EMAIL, password=DEMO_OWNER_PASSWORD, make=DEMO_OWNER_MAKE, vehicle_count=owner.vehicles.count()
    )


@transaction.atomic
def connect_demo_vehicles(*, application: Application) -> list[int]:
    """Connect the demo driver's vehicles to the demo application (as a finished Connect would). Idempotent."""
    owner = SimulatedOwner.objects.get(make=DEMO_OWNER_MAKE, email=DEMO_OWNER_EMAIL, mode=Mode.LIVE)
    vehicles = list(owner.vehicles.order_by("id"))
    if not Connection.objects.filter(application=application, grant__owner=owner, revoked_at__isnull=True).exists():
        grant = Grant.objects.create(application=application, owner=owner, scopes=list(PERMISSIONS))
        Connection.objects.bulk_create(Connection(grant=grant, application=application, vehicle=v) for v in vehicles)
    return [vehicle.pk for vehicle in vehicles]
