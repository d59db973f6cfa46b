"""Credentials shown once and stored as keyed hashes.

HMAC-SHA256 with a server pepper rather than the password hasher: client secrets are
checked on every token request, and they are long random strings, so a slow hash adds
latency without adding safety. A leaked database without the pepper reveals nothing usable.
"""

import hashlib
import hmac
import secrets

from django.conf import settings


def generate_secret(prefix: str = "") -> str:
    """A new random credential: 256 bits, URL-safe."""
    return prefix + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hmac.new(settings.CREDENTIAL_PEPPER.encode(), secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_hash)


def hint_for(secret: str) -> str:
    return secret[-4:]
