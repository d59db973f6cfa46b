"""VINs: the North American check digit, and the VINs the Simulator generates."""

import pytest

from vehicles import catalog
from vehicles.vin import check_digit, generate_vin, is_valid_vin, year_code, years_for_code

REAL_VIN = "1M8GDM9AXKP042788"  # the textbook example: a 1989 Motor Coach Industries bus, check digit X


@pytest.mark.parametrize("vin", [REAL_VIN, "11111111111111111", REAL_VIN.lower()])
def test_it_accepts_known_valid_vins(vin):
    assert is_valid_vin(vin)


def test_it_computes_the_check_digit_of_a_real_vin():
    assert check_digit(REAL_VIN) == "X"
    assert check_digit("11111111111111111") == "1"


@pytest.mark.parametrize("position", range(17))
def test_it_rejects_a_vin_with_one_character_mistyped(position):
    # No letter transliterates to 0, so "0" always changes the weighted sum (or the check digit itself).
    replacement = "0" if REAL_VIN[position] != "0" else "1"
    mistyped = REAL_VIN[:position] + replacement + REAL_VIN[position + 1 :]
    assert not is_valid_vin(mistyped)


@pytest.mark.parametrize(
    "vin", ["", "1M8GDM9AXKP04278", "1M8GDM9AXKP0427888", "IM8GDM9AXKP042788", "1M8GDM9AXKP04278O", None, 12345]
)
def test_it_rejects_wrong_lengths_forbidden_letters_and_non_strings(vin):
    assert not is_valid_vin(vin)


@pytest.mark.parametrize("model", [m for make in catalog.MAKES.values() for m in make.models], ids=str)
def test_generated_vins_are_valid_and_carry_the_wmi_and_model_year(model):
    for seed in range(20):
        vin = generate_vin(wmi=model.wmi, seed=seed, year=model.last_year)
        assert is_valid_vin(vin), vin
        assert vin.startswith(model.wmi)
        assert years_for_code(vin[9], latest=2030)[0] == model.last_year


def test_the_same_seed_gives_the_same_vin_and_other_seeds_do_not():
    first = generate_vin(wmi="5YJ", seed=42, year=2021)
    assert generate_vin(wmi="5YJ", seed=42, year=2021) == first
    assert len({generate_vin(wmi="5YJ", seed=seed, year=2021) for seed in range(500)}) == 500


def test_it_refuses_a_malformed_wmi():
    with pytest.raises(ValueError, match="WMI"):
        generate_vin(wmi="IO", seed=1, year=2020)


def test_model_year_codes_cycle_every_thirty_years():
    assert year_code(1989) == "K" == year_code(2019)
    assert year_code(2001) == "1"
    assert years_for_code("K", latest=2026) == [2019, 1989]
    assert years_for_code("U", latest=2026) == []  # U, Z and 0 never encode a year
