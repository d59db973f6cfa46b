"""The dashboard Simulator: a team's simulated vehicles and the owner logins that Connect signs in with."""

import secrets
from dataclasses import dataclass

from django.db import transaction

from accounts.audit import record_audit
from vehicles import catalog, simulator
from vehicles.models import SimulatedOwner, SimulatedVehicle


@dataclass(frozen=True)
class OwnerLogin:
    """A new simulated owner's credentials, shown once."""

    make: str
    email: str
    password: str


@transaction.atomic
def add_simulated_vehicle(
    *, actor, make: str, model: str | None, year: int | None, vin: str | None, owner_id: int | None
) -> tuple[SimulatedVehicle, OwnerLogin | None]:
    """Create a simulated vehicle for an existing owner of the team, or for a new owner login (returned once)."""
    login = None
    if owner_id:
        owner = SimulatedOwner.objects.get(pk=owner_id, team=actor.team)
        if owner.make != make:
            raise simulator.SimulatorError(
                f"{owner.email} is an owner at {catalog.display_name(owner.make)}, not {catalog.display_name(make)}."
            )
    else:
        login = OwnerLogin(
            make=make, email=f"driver-{secrets.token_hex(3)}@{make.lower()}.example", password=secrets.token_urlsafe(9)
        )
        owner = simulator.create_owner(team=actor.team, make=make, email=login.email, password=login.password)
    vehicle = simulator.create_vehicle(owner=owner, model=model, year=year, vin=vin)
    record_audit(
        team=actor.team,
        actor=actor.user,
        action="simulator.vehicle_created",
        target=f"{vehicle.year} {vehicle.make} {vehicle.model}",
        owner=owner.email,
    )
    return vehicle, login
