"""How long checking a client secret costs: our keyed HMAC vs Django's password hasher.

The token endpoint checks the client secret on every request, so this is on a hot path.
Run: .venv/bin/python bench/bench_client_secret.py [iterations]
"""

import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import check_password, make_password  # noqa: E402

from accounts.credentials import generate_secret, hash_secret, secret_matches  # noqa: E402


def main(iterations: int) -> None:
    secret = generate_secret("sk_")
    stored_hmac = hash_secret(secret)
    stored_password_hash = make_password(secret)
    hmac_seconds = timeit.timeit(lambda: secret_matches(secret, stored_hmac), number=iterations)
    slow_iterations = max(1, iterations // 1000)
    pbkdf2_seconds = timeit.timeit(lambda: check_password(secret, stored_password_hash), number=slow_iterations)
    print(f"HMAC-SHA256 check:    {hmac_seconds / iterations * 1e6:10.2f} µs per check ({iterations} runs)")
    print(f"PBKDF2 (Django) check:{pbkdf2_seconds / slow_iterations * 1e6:10.2f} µs per check ({slow_iterations} runs)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
