"""A PostgreSQL database of a benchmark's own, created afresh each run."""

from urllib.parse import urlsplit, urlunsplit


def recreate_database(url: str) -> None:
    """Drop the database `url` names (whoever is connected) and create it empty, through the server's `postgres`."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
