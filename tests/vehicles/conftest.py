# Shared fixtures live with their builders: api_helpers.py (the API) and connect_helpers.py (Connect, tokens).
from tests.vehicles.api_helpers import api, fake_provider, in_memory_cache, management, metered  # noqa: F401
from tests.vehicles.connect_helpers import application, driver  # noqa: F401
