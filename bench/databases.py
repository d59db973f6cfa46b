"""A PostgreSQL database of a benchmark's own, created afresh and migrated each run."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def recreate_database(url: str) -> None:
    """Drop the database `url` names (whoever is connected) and create it empty, through the server's `postgres`."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def fresh_database(url: str, env: dict) -> None:
    """Recreate the database `url` names and migrate it with manage.py, run under `env`."""
    recreate_database(url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)


def setup_django(url: str, **settings: str) -> None:
    """This process's Django on a fresh, migrated database `url`: production settings (DEBUG off) unless
    `settings` (environment variables) say otherwise."""
    defaults = {"DJANGO_SETTINGS_MODULE": "dashboard.settings", "DEBUG": "0", "SECRET_KEY": SECRET_KEY}
    os.environ.update({**defaults, "DATABASE_URL": url, **settings})
    fresh_database(url, os.environ)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
