# The API fixtures live with their builders in tests/vehicles/api_helpers.py.
from tests.vehicles.api_helpers import api, fake_provider, in_memory_cache  # noqa: F401
