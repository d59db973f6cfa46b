"""One budget of Stripe requests a second, shared by every process that talks to Stripe: web, workers, commands.

Stripe allows 100 requests a second in live mode and 25 in test mode (fewer on some endpoints) per account, and
answers 429 above that. Celery's `rate_limit` counts per worker node, so N workers would make N times the calls;
this budget lives in the shared cache instead. Every request the SDK sends, its own retries included, first
takes a turn (stripe_gateway wraps the SDK's HTTP client): turns are a little over 1/limit seconds apart, so
whichever processes send them, a second holds at most `limit` requests. A caller whose turn is in the future
sleeps until it; if the next free turn is more than MAX_WAIT_SECONDS away it takes none and raises
OutOfStripeBudget, a stripe.RateLimitError, which callers already treat as Stripe's own 429 (the charge task
retries it later).

Storage:
- Redis (CACHE_URL=redis://...): one Lua script reserves the next turn atomically ("generic cell rate
  algorithm": one number per account, the time of the next free turn), on Redis's own clock, so hosts whose
  clocks differ cannot crowd a second.
- Any other cache: each turn is its own cache key, claimed with `cache.add`, which is atomic on every backend
  Django ships (an INSERT on the database cache's primary key, SET NX on Redis, a lock in locmem). Turns are
  numbers on the local clock, so hosts need synchronised clocks (NTP), as payments' claims already do. The
  database cache is shared by all processes; locmem is not: each process then has a budget of its own.
"""

import hashlib
import logging
import math
import time
from functools import cache as memoize

import stripe
from django.core.cache import cache
from django.db import DatabaseError
from redis import RedisError

from dashboard.cache_redis import cache_redis_client

logger = logging.getLogger("billing.stripe_limits")

# The longest a request waits for its turn. stripe_gateway.LONGEST_CALL counts it once per attempt of a request.
MAX_WAIT_SECONDS = 5
KEY_PREFIX = "ignition:stripe-turns:"
# Turns are (1 + LATE_ALLOWANCE) / limit seconds apart rather than 1 / limit: a request that leaves up to 50 ms
# after its turn (its process woke late, a busy host) still cannot make one too many in a second. It costs 5 %.
LATE_ALLOWANCE = 0.05
_LOOKAHEAD = 50  # turns read in one cache round trip while looking for a free one


class OutOfStripeBudget(stripe.RateLimitError):
    """No turn to call Stripe within MAX_WAIT_SECONDS: our own rate limit, to be handled as Stripe's 429."""


def account_of(api_key: str) -> str:
    """Stripe counts per account and mode; the key names both (a hash: the key itself never reaches the cache)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


def wait_for_turn(account: str, per_second: int) -> float:
    """Take the next turn to send one request to Stripe and sleep until it comes; the seconds waited.

    Raises OutOfStripeBudget if the next free turn is more than MAX_WAIT_SECONDS away. `per_second` < 1: no limit.
    With the cache unreachable it sends at once: an outage of the cache should not stop payments too.
    """
    if per_second < 1:
        return 0.0
    try:
        wait = reserve_turn(account, per_second)
    except (DatabaseError, RedisError):  # the cache is down: meanwhile Stripe's own 429s, retried, are the limit
        logger.warning("No Stripe rate limit: the cache is unreachable; sending without a turn", exc_info=True)
        return 0.0
    if wait is None:
        raise OutOfStripeBudget(
            f"More than {per_second} Stripe requests a second are queued: no turn within {MAX_WAIT_SECONDS} s",
            http_status=429,
            code="rate_limit",
        )
    if wait > 0:
        time.sleep(wait)
    return wait


def reserve_turn(account: str, per_second: int) -> float | None:
    """Reserve the next free turn: the seconds until it comes (0: now), or None if it is too far off."""
    client = cache_redis_client()
    if client is not None:
        reserve = _reserve_script(client)
        wait = float(reserve(keys=[KEY_PREFIX + account], args=[repr(_interval(per_second)), MAX_WAIT_SECONDS]))
        return None if wait < 0 else wait
    return _reserve_in_cache(account, per_second)


def _interval(per_second: int) -> float:
    return (1 + LATE_ALLOWANCE) / per_second


# KEYS[1]: the time (Redis's clock, seconds) of the account's next free turn. ARGV: interval, max wait.
# Returns the wait in seconds as a string (Lua numbers would be truncated to integers), or "-1" if too long.
_RESERVE_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1e6
local interval, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2])
local turn = tonumber(redis.call('GET', KEYS[1]) or now)
if turn < now then turn = now end
if turn - now > max_wait then return '-1' end
redis.call('SET', KEYS[1], tostring(turn + interval), 'PX', math.ceil((turn + interval - now) * 1000) + 1000)
return tostring(turn - now)
"""


@memoize
def _reserve_script(client):
    return client.register_script(_RESERVE_LUA)


def _reserve_in_cache(account: str, per_second: int) -> float | None:
    """Turn n starts at n × interval on the local clock; claim the first free one still to come with cache.add.

    Only turns still to come: one that began a moment ago, used now, would come closer than 1/per_second to the
    next one, and a second could hold one request too many."""
    interval = _interval(per_second)
    now = time.time()
    first, last = math.ceil(now / interval), math.floor((now + MAX_WAIT_SECONDS) / interval)
    for start in range(first, last + 1, _LOOKAHEAD):
        turns = range(start, min(start + _LOOKAHEAD, last + 1))
        taken = cache.get_many([f"{KEY_PREFIX}{account}:{turn}" for turn in turns])
        for turn in turns:
            key = f"{KEY_PREFIX}{account}:{turn}"
            if key in taken:
                continue
            # Kept until its turn has passed (a turn is never claimed after that), so the key is never reused:
            # the database cache's add is only atomic for a key that does not exist yet.
            if cache.add(key, 1, timeout=math.ceil(turn * interval - now) + 2):
                return max(turn * interval - time.time(), 0.0)  # from now: the cache's round trips took time
    return None
