"""`Idempotency-Key` on the vehicle API: a retried request is answered once, and counted once.

A view claims the key only once the caller is known to be allowed the request (a valid token, the endpoint's
permission, the vehicle still connected to the token's grant): a replay is an answer like any other, so it goes
only to whom a fresh answer would. Keys belong to the token's grant (one owner's consent to one application;
a refreshed token keeps it), so one owner's key never reaches another's answers.

The first request with a key claims it (a unique row per application and hash of grant and key); when it
succeeds its answer is stored, and a retry within 24 hours with the same parameters (method, path, query
string, unit system and body) gets that answer back with `Idempotent-Replayed: true` without reaching the
vehicle or metering again. A failed request releases the key, so a retry really retries. The key on a request
with other parameters answers 400 VALIDATION:IDEMPOTENCY_KEY_MISMATCH; while the first request still runs,
400 VALIDATION:PARAMETER. After 24 hours a key may be used afresh, as with Stripe's API.
"""

import hashlib
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone

from vehicles.api.units import unit_system
from vehicles.errors import ApiError
from vehicles.models import IdempotentRequest

KEY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
REPLAYED_HEADERS = ("Content-Type", "SC-Data-Age", "SC-Fetched-At", "SC-Unit-System")


class Replay(Exception):
    """Raised by `claim` when the key already has a stored answer; `response()` rebuilds it."""

    def __init__(self, record: IdempotentRequest):
        super().__init__("replay")
        self.record = record

    def response(self) -> HttpResponse:
        response = HttpResponse(bytes(self.record.body), status=self.record.status_code)
        for name, value in self.record.headers.items():
            response[name] = value
        response["Idempotent-Replayed"] = "true"
        return response


def _key_error(message: str, code: str = "PARAMETER") -> ApiError:
    return ApiError("VALIDATION", code, detail=[{"field": "Idempotency-Key", "message": message}])


def _sha256(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def key_hash(*, grant_id: int, key: str) -> str:
    """What a key is stored under: the grant's own namespace, so another owner's token can't reach it."""
    return _sha256(f"grant:{grant_id}".encode(), key.encode("utf-8", "surrogatepass"))


def fingerprint(request) -> str:
    """The parameters a key may only be retried with: method, path, query string, unit system and body."""
    return _sha256(
        request.method.encode(),
        request.path.rstrip("/").encode("utf-8", "surrogatepass"),
        request.META.get("QUERY_STRING", "").encode("utf-8", "surrogatepass"),
        unit_system(request).encode(),
        request.body,  # RequestDataTooBig past DATA_UPLOAD_MAX_MEMORY_SIZE: the view answers 413
    )


def claim(request, *, application_id: int, grant_id: int, key: str) -> IdempotentRequest:
    """Claim `key` for this request, or raise Replay (answered before) or ApiError (misused key).

    Call it only after the caller's access to this request has been checked (see the module docstring).
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise _key_error(f"An Idempotency-Key has 1 to {MAX_KEY_LENGTH} characters.")
    hashed, request_fingerprint = key_hash(grant_id=grant_id, key=key), fingerprint(request)
    now = timezone.now()
    for _ in range(2):
        try:
            with transaction.atomic():
                return IdempotentRequest.objects.create(
                    application_id=application_id, key_hash=hashed, fingerprint=request_fingerprint, created_at=now
                )
        except IntegrityError:
            existing = IdempotentRequest.objects.filter(application_id=application_id, key_hash=hashed).first()
        if existing is None:
            continue  # released between our INSERT and SELECT: claim again
        if existing.created_at <= now - KEY_TTL:
            IdempotentRequest.objects.filter(pk=existing.pk, created_at=existing.created_at).delete()
            continue  # an expired key is free again
        if existing.fingerprint != request_fingerprint:
            raise _key_error(
                "This Idempotency-Key was used with different parameters in the last 24 hours.",
                code="IDEMPOTENCY_KEY_MISMATCH",
            )
        if existing.status_code is None:
            raise _key_error("A request with this Idempotency-Key is still being answered; retry in a moment.")
        raise Replay(existing)
    raise _key_error("This Idempotency-Key could not be claimed; retry with it in a moment.")


def complete(record: IdempotentRequest, response: HttpResponse) -> None:
    """Keep a successful answer for retries; release the key after a failure, so a retry tries again."""
    if 200 <= response.status_code < 300:
        headers = {name: response[name] for name in REPLAYED_HEADERS if name in response}
        IdempotentRequest.objects.filter(pk=record.pk).update(
            status_code=response.status_code, body=response.content, headers=headers
        )
    else:
        IdempotentRequest.objects.filter(pk=record.pk).delete()


def purge_expired(now=None) -> int:
    """Delete keys older than KEY_TTL (a beat task); expired ones are also freed when reused."""
    cutoff = (now or timezone.now()) - KEY_TTL
    return IdempotentRequest.objects.filter(created_at__lte=cutoff).delete()[0]
