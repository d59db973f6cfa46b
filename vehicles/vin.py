"""Vehicle identification numbers: ISO 3779 layout with the North American check digit (position 9).

Layout: WMI (1-3, the manufacturer), VDS (4-8), check digit (9), model year (10), plant (11),
serial (12-17). We require the check digit on every VIN, as North America does, so a VIN typed
with one wrong character is refused instead of silently creating a different vehicle.
"""

import random
import re

# Letters I, O and Q never appear in a VIN: they read as 1 and 0.
ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
_LETTER_VALUES = dict(
    zip("ABCDEFGHJKLMNPRSTUVWXYZ", (1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9), strict=True)
)
_VALUES = {**{str(d): d for d in range(10)}, **_LETTER_VALUES}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_PATTERN = re.compile(r"[0-9A-HJ-NPR-Z]{17}")

# Position 10 cycles through these every 30 years (1980 = A, 2001 = 1, 2010 = A again); no U, Z or 0.
YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"
_FIRST_CODED_YEAR = 1980
_SERIAL_DIGITS = 6


def check_digit(vin: str) -> str:
    """The check digit (0-9 or X) that position 9 of `vin` must hold; position 9 itself is ignored."""
    total = sum(_VALUES[char] * weight for char, weight in zip(vin.upper(), _WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def is_valid_vin(vin: str) -> bool:
    """17 characters from the VIN alphabet, with a correct check digit."""
    if not isinstance(vin, str) or not _VIN_PATTERN.fullmatch(vin.upper()):
        return False
    return vin[8].upper() == check_digit(vin)


def year_code(year: int) -> str:
    """The model-year character (position 10) for `year`."""
    return YEAR_CODES[(year - _FIRST_CODED_YEAR) % len(YEAR_CODES)]


def years_for_code(code: str, *, latest: int) -> list[int]:
    """Model years a position-10 character may stand for, newest first, none after `latest` (empty if no year)."""
    if len(code) != 1 or code.upper() not in YEAR_CODES:
        return []
    first = _FIRST_CODED_YEAR + YEAR_CODES.index(code.upper())
    return list(range(first, latest + 1, len(YEAR_CODES)))[::-1]


def generate_vin(*, wmi: str, seed: int | str, year: int) -> str:
    """A valid VIN for manufacturer `wmi` and model `year`, the same for the same seed."""
    if len(wmi) != 3 or any(char not in ALPHABET for char in wmi.upper()):
        raise ValueError(f"A WMI is 3 VIN characters, not {wmi!r}.")
    # A string seed keeps the result stable across processes (str hashing is salted, random's isn't).
    rng = random.Random(f"vin:{wmi.upper()}:{seed}")  # noqa: S311 (repeatable, not secret)
    descriptor = "".join(rng.choice(ALPHABET) for _ in range(5))
    plant = rng.choice(ALPHABET[10:])
    serial = "".join(rng.choice("0123456789") for _ in range(_SERIAL_DIGITS))
    draft = f"{wmi.upper()}{descriptor}0{year_code(year)}{plant}{serial}"
    return draft[:8] + check_digit(draft) + draft[9:]
