"""The demo's simulated drivers: a Tesla owner login with two vehicles, usable in live-mode Connect, and the
Enterprise demo team's Ford fleet login."""

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
DEMO_FLEET_MAKE = "FORD"
DEMO_FLEET_EMAIL = "fleet@ford.example"
DEMO_FLEET_PASSWORD = "ignition-demo-fleet"
DEMO_FLEET_VEHICLES = [("F-150 Lightning", 2023), ("F-150 Lightning", 2024), ("F-150", 2022)]


@dataclass(frozen=True)
class DemoOwner:
    email: str
    password: str
    make: str
    vehicle_count: int


@transaction.atomic
def seed_demo_owner(
    *,
    team: Team,
    make: str = DEMO_OWNER_MAKE,
    email: str = DEMO_OWNER_EMAIL,
    password: str = DEMO_OWNER_PASSWORD,
    vehicles: list[tuple[str, int]] = DEMO_VEHICLES,
) -> DemoOwner:
    """Create or repair a demo driver (by default the Tesla one) and their vehicles. Idempotent."""
    owner = SimulatedOwner.objects.filter(make=make, email=email, mode=Mode.LIVE).first()
    if owner is None:
        owner = simulator.create_owner(team=team, make=make, email=email, password=password)
    elif not simulator.authenticate_owner(make=make, email=email, password=password, mode=Mode.LIVE):
        owner.password = make_password(password)
        owner.save(update_fields=["password"])
    if not owner.vehicles.exists():
        for model, year in vehicles:
            simulator.create_vehicle(owner=owner, model=model, year=year)
    return DemoOwner(email=email, password=password, make=make, vehicle_count=owner.vehicles.count())


@transaction.atomic
def connect_demo_vehicles(
    *, application: Application, make: str = DEMO_OWNER_MAKE, email: str = DEMO_OWNER_EMAIL
) -> list[int]:
    """Connect a demo driver's vehicles to a demo application (as a finished Connect would). Idempotent."""
    owner = SimulatedOwner.objects.get(make=make, email=email, mode=Mode.LIVE)
    vehicles = list(owner.vehicles.order_by("id"))
    if not Connection.objects.filter(application=application, grant__owner=owner, revoked_at__isnull=True).exists():
        grant = Grant.objects.create(application=application, owner=owner, scopes=list(PERMISSIONS))
        Connection.objects.bulk_create(Connection(grant=grant, application=application, vehicle=v) for v in vehicles)
    return [vehicle.pk for vehicle in vehicles]
