"""Simulated brands' owners and vehicles: created by the dashboard Simulator, `seed_demo` and Connect's test mode.

Every vehicle's simulation seed is derived from its VIN, so a vehicle re-created with the same VIN
behaves the same, and test-mode vehicles are the same every time the same email signs in.
Test-mode owners belong to one application, and are purged once unused (a daily beat task).
"""

import hashlib
import random
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Application
from vehicles import catalog
from vehicles.errors import ERRORS
from vehicles.models import Connection, Engine, Mode, SimulatedOwner, SimulatedVehicle
from vehicles.vin import generate_vin, is_valid_vin, years_for_code

PURGE_BATCH = 200  # owners per transaction (each with up to CONNECT_TEST_MODE_MAX_VEHICLES vehicles)
_N_VEHICLES_EMAIL = re.compile(r"^(\d+)-vehicles@", re.IGNORECASE)
_ERROR_EMAIL = re.compile(r"^([A-Za-z_]+)\.([A-Za-z_]+)@")
_ENGINE_NAMES = {"BEV": "battery electric", "ICE": "combustion", "PHEV": "plug-in hybrid"}


class SimulatorError(ValueError):
    """A request the Simulator refuses; the message is meant for the person who made it."""


def seed_for_vin(vin: str) -> int:
    """The simulation seed for a VIN: stable across processes, and fits a signed 64-bit column."""
    return int.from_bytes(hashlib.sha256(vin.upper().encode()).digest()[:8], "big") >> 1


# --- owners ----------------------------------------------------------------------------------------------------------


def _make_or_error(make: str) -> catalog.MakeSpec:
    spec = catalog.get_make(make)
    if spec is None:
        raise SimulatorError(f"{make} is not a simulated brand. Choose one of: {', '.join(catalog.make_names())}.")
    return spec


def create_owner(*, team, make: str, email: str, password: str, mode: str = "live") -> SimulatedOwner:
    """A driver's login at a simulated brand; one per (make, email, mode)."""
    # Lower-cased so the unique constraint, not a racy lookup, keeps one login per address.
    make, email = _make_or_error(make).name, email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise SimulatorError(f"{email} is not a valid email address.") from None
    if not password:
        raise SimulatorError("The owner needs a password.")
    try:
        with transaction.atomic():  # a savepoint: a duplicate must not break the caller's transaction
            return SimulatedOwner.objects.create(
                team=team, make=make, email=email, password=make_password(password), mode=mode
            )
    except IntegrityError:
        raise SimulatorError(f"{email} already has a {catalog.display_name(make)} login in {mode} mode.") from None


def authenticate_owner(*, make: str, email: str, password: str, mode: str) -> SimulatedOwner | None:
    """The owner whose login this is at `make` in `mode`, or None if the email or password is wrong."""
    owner = SimulatedOwner.objects.filter(make=(make or "").upper(), email__iexact=email.strip(), mode=mode).first()
    if owner is None:
        make_password(password)  # spend the same time as a real check, so timing doesn't reveal which emails exist
        return None
    return owner if check_password(password, owner.password) else None


# --- vehicles --------------------------------------------------------------------------------------------------------


def _candidate_models(make: catalog.MakeSpec, model: str | None, engine: str | None) -> list[catalog.ModelSpec]:
    models = list(make.models)
    if model:
        models = [m for m in models if m.name.casefold() == model.strip().casefold()]
        if not models:
            names = ", ".join(m.name for m in make.models)
            raise SimulatorError(f"{catalog.display_name(make.name)} has no model called {model}. Try one of: {names}.")
    if engine:
        models = [m for m in models if m.engine == engine]
        if not models:
            wanted = model or catalog.display_name(make.name)
            raise SimulatorError(f"No {_ENGINE_NAMES.get(engine, engine)} {wanted} is simulated.")
    return models


def _models_built_in(models: list[catalog.ModelSpec], year: int) -> list[catalog.ModelSpec]:
    built = [m for m in models if m.built_in(year)]
    if not built:
        spans = "; ".join(f"{m.name} {m.first_year}-{m.last_year}" for m in models)
        raise SimulatorError(f"None of these were built in {year}: {spans}.")
    return built


def _year_from_vin(vin: str, models: list[catalog.ModelSpec], now: datetime) -> int | None:
    """The model year position 10 encodes, if one of the candidate models was built then."""
    years = years_for_code(vin[9], latest=now.year + 1)
    return next((y for y in years if any(m.built_in(y) for m in models)), None)


def _check_vin(vin: str, make: catalog.MakeSpec) -> str:
    vin = vin.strip().upper()
    if not is_valid_vin(vin):
        raise SimulatorError(
            f"{vin} is not a valid VIN: it needs 17 letters and digits (no I, O or Q) and a correct check digit."
        )
    builder = catalog.make_for_wmi(vin[:3])
    if builder and builder != make.name:
        raise SimulatorError(
            f"{vin} is a {catalog.display_name(builder)} VIN, not a {catalog.display_name(make.name)} one."
        )
    return vin


def build_vehicle(
    *,
    owner: SimulatedOwner,
    rng: random.Random,
    model: str | None = None,
    year: int | None = None,
    vin: str | None = None,
    engine: str | None = None,
    now: datetime | None = None,
) -> SimulatedVehicle:
    """An unsaved vehicle for `owner`; whatever isn't given is picked with `rng` from the brand's catalog."""
    make = _make_or_error(owner.make)
    now = now or timezone.now()
    models = _candidate_models(make, model, engine)
    if vin:
        vin = _check_vin(vin, make)
        year = year or _year_from_vin(vin, models, now)
    if year:
        models = _models_built_in(models, year)
    spec = rng.choice(models)
    # Not a model year from the future, unless the model only exists there (a clock set back in tests).
    year = year or rng.randint(spec.first_year, max(spec.first_year, min(spec.last_year, now.year + 1)))
    vin = vin or generate_vin(wmi=spec.wmi, seed=rng.getrandbits(64), year=year)
    return SimulatedVehicle(
        owner=owner,
        make=make.name,
        model=spec.name,
        year=year,
        vin=vin,
        engine=spec.engine,
        seed=seed_for_vin(vin),
        created_at=now,
        # Plug-in vehicles start parked on their charger, so charge commands work out of the box.
        is_plugged_in=spec.engine != Engine.ICE,
    )


def create_vehicle(*, owner, model=None, year=None, vin=None, engine=None, now=None) -> SimulatedVehicle:
    """A simulated vehicle for `owner`, by model/year or by VIN; what's omitted gets a plausible default."""
    rng = random.Random(vin.strip().upper() if vin else secrets.randbits(64))  # noqa: S311 (not secret)
    vehicle = build_vehicle(owner=owner, rng=rng, model=model, year=year, vin=vin, engine=engine, now=now)
    vehicle.save()
    return vehicle


# --- Connect's test mode ---------------------------------------------------------------------------------------------


def _test_vehicle_count(email: str) -> int:
    """`<n>-vehicles@...` asks for n vehicles (1 to CONNECT_TEST_MODE_MAX_VEHICLES); any other email gets one."""
    match = _N_VEHICLES_EMAIL.match(email)
    if not match:
        return 1
    count, most = int(match[1]), settings.CONNECT_TEST_MODE_MAX_VEHICLES
    if not 1 <= count <= most:
        raise SimulatorError(f"Test mode signs in with 1 to {most} vehicles, not {count}.")
    return count


def _test_failure(email: str) -> str:
    """`TYPE.CODE@...` (e.g. VEHICLE_STATE.ASLEEP@smartcar.com) makes the vehicle fail with that API error."""
    match = _ERROR_EMAIL.match(email)
    if not match:
        return ""
    pair = (match[1].upper(), match[2].upper())
    # Only known (type, code) pairs: "jane.doe@example.com" is an ordinary email.
    return f"{pair[0]}:{pair[1]}" if pair in ERRORS else ""


def test_mode_owner(
    *, application: Application, email: str, make: str, may_create: Callable[[], bool] = lambda: True
) -> SimulatedOwner | None:
    """Connect test mode: any email signs in; the same (application, make, email) always gives the same owner.

    Test owners belong to the application that signed in: another application signing in with the same
    email gets owners and vehicles of its own. `<n>-vehicles@anything` gives n vehicles for n from 1 to
    CONNECT_TEST_MODE_MAX_VEHICLES; any other n is refused with a SimulatorError (shown on the sign-in form)
    rather than quietly clamped, so a typo is noticed. None: the owner would be new and `may_create()`
    (the caller's rate limit, asked only then) said no.
    """
    make, email = _make_or_error(make).name, email.strip().lower()
    if "@" not in email:
        raise SimulatorError("Enter an email address; in test mode any address and password sign in.")
    count, failure = _test_vehicle_count(email), _test_failure(email)
    owners = SimulatedOwner.objects.filter(application=application, make=make, email=email, mode=Mode.TEST)
    if owners.update(last_signed_in_at=timezone.now()):  # signing in again: the same owner, used today
        return owners.get()
    if not may_create():
        return None
    try:
        with transaction.atomic():
            return _create_test_owner(application=application, make=make, email=email, count=count, failure=failure)
    except IntegrityError:  # a concurrent first sign-in with the same email won; use its owner
        return owners.get()


def _create_test_owner(*, application: Application, make: str, email: str, count: int, failure: str) -> SimulatedOwner:
    now = timezone.now()
    owner = SimulatedOwner.objects.create(
        application=application,
        make=make,
        email=email,
        mode=Mode.TEST,
        password=make_password(None),
        last_signed_in_at=now,
    )
    vehicles = []
    for index in range(count):
        # Repeatable on purpose: the same email gives the same vehicles, for every application and after a purge.
        rng = random.Random(f"test-mode:{make}:{email}:{index}")  # noqa: S311
        vehicle = build_vehicle(owner=owner, rng=rng, now=now)
        vehicle.failure = failure
        vehicles.append(vehicle)
    SimulatedVehicle.objects.bulk_create(vehicles, batch_size=500)
    return owner


def unused_test_owners(*, now: datetime | None = None):
    """Test-mode owners unused for CONNECT_TEST_MODE_RETENTION_DAYS: no Connect sign-in as them, and no connection
    made to or API request sent to any of their vehicles, in that time."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.CONNECT_TEST_MODE_RETENTION_DAYS)
    recent_use = Connection.objects.filter(vehicle__owner=OuterRef("pk")).filter(
        Q(connected_at__gte=cutoff) | Q(last_request_at__gte=cutoff)
    )
    return (
        SimulatedOwner.objects.filter(mode=Mode.TEST)
        .alias(last_seen=Coalesce("last_signed_in_at", "created_at"))  # owners from before sign-ins were stamped
        .filter(last_seen__lt=cutoff)
        .exclude(Exists(recent_use))
    )


def purge_unused_test_owners(*, now: datetime | None = None) -> int:
    """Delete unused test-mode owners with their vehicles, grants, tokens and codes; returns how many owners."""
    unused, purged = unused_test_owners(now=now), 0
    while batch := list(unused.values_list("pk", flat=True)[:PURGE_BATCH]):
        with transaction.atomic():
            # Re-checked as it deletes: an owner signed in as since the batch was read is kept.
            _, deleted = unused.filter(pk__in=batch).delete()
        purged += deleted.get(SimulatedOwner._meta.label, 0)
    return purged
