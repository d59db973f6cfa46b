"""The Redis server behind the Django cache, for what the cache API cannot do (Lua scripts).

The vehicle API's rate limits (vehicles.api.rate_limits) and the shared Stripe budget (billing.stripe_limits) each
run one script atomically on it; with any other cache backend they fall back to the cache API.
"""

from functools import cache

from django.conf import settings


def cache_redis_client():
    """A client of the cache's Redis (same server and database), or None when the cache is not Redis."""
    config = settings.CACHES["default"]
    if not config["BACKEND"].endswith("RedisCache"):
        return None
    return _client_for(config["LOCATION"])


@cache
def _client_for(url: str):
    import redis

    return redis.Redis.from_url(url)
