"""Metric to imperial for `sc-unit-system: imperial`.

Providers answer in metric (km, litres, kPa). Smartcar's imperial is miles, US gallons and psi.
The header is matched case-insensitively; a missing or unknown value means metric, as Smartcar does.
"""

METRIC = "metric"
IMPERIAL = "imperial"

KM_PER_MILE = 1.609344
LITRES_PER_US_GALLON = 3.785411784
KPA_PER_PSI = 6.894757293168361

# kind of quantity -> divisor from the metric value to the imperial one
_DIVISORS = {"distance": KM_PER_MILE, "volume": LITRES_PER_US_GALLON, "pressure": KPA_PER_PSI}
DECIMALS = 2


def unit_system(request) -> str:
    raw = request.META.get("HTTP_SC_UNIT_SYSTEM", "")
    return IMPERIAL if raw.strip().lower() == IMPERIAL else METRIC


def convert(data: dict, fields: dict[str, str], system: str) -> dict:
    """A copy of `data` with each field in `fields` (name -> "distance"|"volume"|"pressure") in `system` units."""
    if system != IMPERIAL or not fields:
        return data
    converted = dict(data)
    for name, kind in fields.items():
        value = converted.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            converted[name] = round(value / _DIVISORS[kind], DECIMALS)
    return converted
