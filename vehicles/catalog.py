"""The simulated brands: real makes with plausible models, model years, drivetrains and energy stores.

Data, not logic: add a make or model here and Connect's brand list, the dashboard Simulator and
the simulated provider all pick it up. Makes are upper-case, as Smartcar returns them.
Battery capacities are usable kWh; tanks are litres; ranges are km on a full charge / full tank.
"""

from dataclasses import dataclass

from vehicles.models import Engine


@dataclass(frozen=True)
class ModelSpec:
    make: str
    name: str
    first_year: int
    last_year: int
    engine: str  # an Engine value
    wmi: str  # world manufacturer identifier of the plant that builds it (VIN positions 1-3)
    battery_kwh: float | None = None  # BEV and PHEV
    electric_range_km: float | None = None
    tank_litres: float | None = None  # ICE and PHEV
    fuel_range_km: float | None = None

    def built_in(self, year: int) -> bool:
        return self.first_year <= year <= self.last_year


@dataclass(frozen=True)
class MakeSpec:
    name: str
    models: tuple[ModelSpec, ...]

    @property
    def wmis(self) -> set[str]:
        return {model.wmi for model in self.models}


def _bev(make, name, years, wmi, kwh, range_km) -> ModelSpec:
    return ModelSpec(make, name, *years, Engine.BEV, wmi, battery_kwh=kwh, electric_range_km=range_km)


def _ice(make, name, years, wmi, litres, range_km) -> ModelSpec:
    return ModelSpec(make, name, *years, Engine.ICE, wmi, tank_litres=litres, fuel_range_km=range_km)


def _phev(make, name, years, wmi, kwh, electric_km, litres, fuel_km) -> ModelSpec:
    return ModelSpec(make, name, *years, Engine.PHEV, wmi, kwh, electric_km, litres, fuel_km)


_MODELS = (
    _bev("TESLA", "Model S", (2012, 2025), "5YJ", 95.0, 600),
    _bev("TESLA", "Model 3", (2017, 2025), "5YJ", 75.0, 510),
    _bev("TESLA", "Model X", (2015, 2025), "5YJ", 95.0, 540),
    _bev("TESLA", "Model Y", (2020, 2025), "7SA", 75.0, 500),
    _bev("FORD", "Mustang Mach-E", (2021, 2025), "3FM", 88.0, 460),
    _bev("FORD", "F-150 Lightning", (2022, 2025), "1FT", 98.0, 370),
    _ice("FORD", "F-150", (2015, 2025), "1FT", 87.0, 760),
    _phev("FORD", "Escape Plug-In Hybrid", (2020, 2025), "1FM", 14.4, 60, 42.0, 840),
    _bev("BMW", "i4", (2022, 2025), "WBY", 80.7, 480),
    _bev("BMW", "iX", (2022, 2025), "WBY", 105.2, 520),
    _ice("BMW", "330i", (2019, 2025), "WBA", 59.0, 820),
    _phev("BMW", "X5 xDrive50e", (2019, 2025), "5UX", 25.7, 64, 69.0, 740),
    _ice("TOYOTA", "Camry", (2018, 2025), "4T1", 60.0, 950),
    _phev("TOYOTA", "RAV4 Prime", (2021, 2025), "JTM", 18.1, 68, 55.0, 900),
    _phev("TOYOTA", "Prius Prime", (2017, 2025), "JTD", 13.6, 70, 43.0, 980),
    _bev("TOYOTA", "bZ4X", (2023, 2025), "JTM", 71.4, 400),
    _bev("VOLKSWAGEN", "ID.4", (2021, 2025), "WVG", 77.0, 440),
    _ice("VOLKSWAGEN", "Golf", (2015, 2021), "WVW", 50.0, 800),
    _ice("VOLKSWAGEN", "Tiguan", (2018, 2025), "3VV", 58.0, 720),
    _bev("HYUNDAI", "IONIQ 5", (2022, 2025), "KM8", 77.4, 470),
    _bev("HYUNDAI", "Kona Electric", (2019, 2025), "KM8", 64.0, 415),
    _phev("HYUNDAI", "Tucson Plug-in Hybrid", (2022, 2025), "KM8", 13.8, 53, 42.0, 700),
    _ice("HYUNDAI", "Elantra", (2017, 2025), "5NP", 47.0, 750),
    _bev("AUDI", "e-tron", (2019, 2023), "WA1", 86.5, 360),
    _phev("AUDI", "Q5 55 TFSI e", (2020, 2025), "WA1", 17.9, 40, 54.0, 650),
    _ice("AUDI", "A4", (2017, 2025), "WAU", 58.0, 830),
    _bev("KIA", "EV6", (2022, 2025), "KND", 77.4, 480),
    _phev("KIA", "Niro Plug-In Hybrid", (2018, 2025), "KND", 11.1, 42, 43.0, 880),
    _ice("KIA", "Sportage", (2017, 2025), "KND", 54.0, 720),
)

MAKES: dict[str, MakeSpec] = {
    name: MakeSpec(name, tuple(model for model in _MODELS if model.make == name))
    for name in sorted({model.make for model in _MODELS})
}

# What a row whose model isn't in the catalog (e.g. created by hand) is simulated as.
DEFAULT_SPECS: dict[str, ModelSpec] = {
    Engine.BEV: _bev("", "", (2012, 2025), "5YJ", 75.0, 450),
    Engine.ICE: _ice("", "", (1990, 2025), "1FA", 55.0, 700),
    Engine.PHEV: _phev("", "", (2011, 2025), "1FM", 15.0, 60, 45.0, 750),
}


def make_names() -> list[str]:
    """The simulated brands, alphabetical, upper-case."""
    return list(MAKES)


def get_make(make: str) -> MakeSpec | None:
    return MAKES.get((make or "").strip().upper())


def find_model(make: str, model: str) -> ModelSpec | None:
    """The catalog entry for `model` at `make`, matched case-insensitively; None if we don't know it."""
    spec = get_make(make)
    wanted = (model or "").strip().casefold()
    return next((m for m in spec.models if m.name.casefold() == wanted), None) if spec else None


def spec_for(make: str, model: str, engine: str) -> ModelSpec:
    """The model's catalog entry, or a typical one for its drivetrain when the catalog doesn't have it."""
    found = find_model(make, model)
    return found if found and found.engine == engine else DEFAULT_SPECS.get(engine, DEFAULT_SPECS[Engine.ICE])


def make_for_wmi(wmi: str) -> str | None:
    """The catalog make that builds vehicles with this WMI (VIN positions 1-3), if any."""
    wmi = (wmi or "").upper()
    return next((spec.name for spec in MAKES.values() if wmi in spec.wmis), None)


def display_name(make: str) -> str:
    """How people write the brand: "Tesla", "Volkswagen", but "BMW" (short names are acronyms)."""
    return make.upper() if len(make) <= 3 else make.title()
