# The API tests' shared fixtures live with their builders in api_helpers.py.
from tests.vehicles.api_helpers import api, fake_provider, in_memory_cache, management, metered  # noqa: F401
