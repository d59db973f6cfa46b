"""Rate limits of the vehicle API: a token bucket per application and one per vehicle.

Smartcar documents (SMARTCAR_COMPAT.md §4.4) a bucket per application, 120 requests refilling at
2 a minute (429 RATE_LIMIT:SMARTCAR_API), and a throttle per vehicle that spares its 12 V battery
(429 RATE_LIMIT:VEHICLE). Both answer with Retry-After, the whole seconds until one more request
fits. Sizes come from settings.VEHICLE_API_RATE_LIMIT; VEHICLE_API_RATE_LIMITS_ENABLED=False turns
them off (load tests, schema fuzzing).

Each bucket is a GCRA "theoretical arrival time": one number per bucket, so a request costs a single
cache round trip whatever the bucket size. A request is admitted only if every bucket it draws on
has room, and then it draws on all of them, so a request refused for its vehicle does not also
spend its application's budget.

Storage: on Redis (CACHE_URL=redis://...) one Lua script checks and updates a request's buckets
atomically, so concurrent requests can never overshoot. On any other cache (the zero-config
database cache) it is a read then a write, which concurrent requests can overshoot by a few:
acceptable for development, and the reason production runs Redis.
"""

import math
import time
from dataclasses import dataclass
from functools import cache as memoize

from django.conf import settings
from django.core.cache import cache

from dashboard.cache_redis import cache_redis_client
from vehicles.errors import ApiError

KEY_PREFIX = "ignition:ratelimit:"


@dataclass(frozen=True)
class Bucket:
    key: str
    burst: int  # requests admitted at once from a full bucket
    interval: float  # seconds to earn back one request


@dataclass(frozen=True)
class Refusal:
    bucket: Bucket
    retry_after: int  # whole seconds, at least 1


def _bucket(kind: str, ident: int) -> Bucket:
    burst, per_minute = settings.VEHICLE_API_RATE_LIMIT[kind]
    return Bucket(key=f"{KEY_PREFIX}{kind}:{ident}", burst=max(int(burst), 1), interval=60.0 / max(per_minute, 1e-9))


def check_rate_limits(application_id: int, vehicle_id: int | None = None) -> None:
    """Spend one request from the application's bucket (and the vehicle's), or raise 429 RATE_LIMIT."""
    if not settings.VEHICLE_API_RATE_LIMITS_ENABLED:
        return
    buckets = [_bucket("application", application_id)]
    if vehicle_id is not None:
        buckets.append(_bucket("vehicle", vehicle_id))
    refusal = take(buckets, now=time.time())
    if refusal is not None:
        code = "SMARTCAR_API" if refusal.bucket is buckets[0] else "VEHICLE"
        raise ApiError("RATE_LIMIT", code, retry_after=refusal.retry_after)


def take(buckets: list[Bucket], *, now: float) -> Refusal | None:
    """Admit one request into every bucket, or none of them; the refusal names the fullest bucket."""
    client = cache_redis_client()
    if client is not None:
        return _take_redis(client, buckets, now)
    return _take_cache(buckets, now)


# GCRA, shared by both stores: a bucket's "tat" is when it would be completely full again.
def _admit(tat: float | None, bucket: Bucket, now: float) -> tuple[float, float]:
    """(the bucket's new tat if admitted, seconds of overshoot: > 0 means refused)."""
    new_tat = max(tat or now, now) + bucket.interval
    return new_tat, new_tat - now - bucket.burst * bucket.interval


def _refusal(bucket: Bucket, overshoot: float) -> Refusal:
    return Refusal(bucket=bucket, retry_after=max(1, math.ceil(overshoot)))


def _take_cache(buckets: list[Bucket], now: float) -> Refusal | None:
    stored = cache.get_many([bucket.key for bucket in buckets])
    admitted, worst = {}, None
    for bucket in buckets:
        new_tat, overshoot = _admit(stored.get(bucket.key), bucket, now)
        if overshoot > 0 and (worst is None or overshoot > worst[1]):
            worst = (bucket, overshoot)
        admitted[bucket.key] = new_tat
    if worst is not None:
        return _refusal(*worst)
    # One timeout for all keys: long enough for the slowest bucket to refill completely.
    timeout = math.ceil(max(tat - now for tat in admitted.values())) + 1
    cache.set_many(admitted, timeout=timeout)
    return None


# The same GCRA as _admit, run inside Redis so that checking and spending are one atomic step.
# KEYS: the buckets; ARGV: now, then (burst, interval) per bucket. Returns {index of the refusing
# bucket or 0, overshoot seconds as a string} (Lua numbers would be truncated to integers).
_GCRA_LUA = """
local now = tonumber(ARGV[1])
local new_tats, worst, worst_index = {}, 0, 0
for i = 1, #KEYS do
  local burst, interval = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  new_tats[i] = tat + interval
  local overshoot = new_tats[i] - now - burst * interval
  if overshoot > worst then worst, worst_index = overshoot, i end
end
if worst_index > 0 then return {worst_index, tostring(worst)} end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], tostring(new_tats[i]), 'PX', math.ceil((new_tats[i] - now) * 1000) + 1000)
end
return {0, '0'}
"""


def _take_redis(client, buckets: list[Bucket], now: float) -> Refusal | None:
    args = [repr(now)]
    for bucket in buckets:
        args += [bucket.burst, repr(bucket.interval)]
    index, overshoot = _gcra_script(client)(keys=[bucket.key for bucket in buckets], args=args)
    if int(index) == 0:
        return None
    return _refusal(buckets[int(index) - 1], float(overshoot))


@memoize
def _gcra_script(client):
    return client.register_script(_GCRA_LUA)
