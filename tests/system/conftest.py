"""Fixtures of the system tests: the deployed stack on a database of its own (tests/system/stack.py)."""

import os
import shutil

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import override_settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from tests.processes import ROOT, database_url_for_subprocess
from tests.system.stack import Stack, faketime_library, wait_until

# Beat's rows say every few minutes or hours; the system tests shorten them so a moved clock is acted on at once.
BEAT_EVERY_SECONDS = 3
BEAT_CHANGE_TIMEOUT = 180  # seconds for beat to take the shortened schedule


def pytest_collection_modifyitems(config, items):
    if faketime_library() or os.environ.get("REQUIRE_SYSTEM_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="needs libfaketime (apt-get install faketime); REQUIRE_SYSTEM_TESTS=1 fails instead")
    for item in items:
        if "system" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def stack(request, django_db_setup, django_db_blocker):
    """The Procfile's processes on a freshly migrated database; the test process's ORM points at it meanwhile.

    A database of its own, not the test database: it is migrated the way a deploy migrates (the beat
    schedule rows come from migrations, as in production), and nothing the stack writes leaks into
    other tests.
    """
    connection = connections["default"]
    with django_db_blocker.unblock():
        test_name = connection.settings_dict["NAME"]
        # Under var/, not pytest's temporary folders (which keep only the last few runs): kept if a test fails.
        workdir = ROOT / "var" / "system-tests" / str(os.getpid())
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        failures_before = request.session.testsfailed
        system_name = _create_database(connection, test_name, workdir)
        connection.close()
        connection.settings_dict["NAME"] = system_name
        extra_env = getattr(request.module, "STACK_ENV", {})  # a module's own settings for its stack
        stack = Stack(
            workdir=workdir, database_url=database_url_for_subprocess(connection.settings_dict), extra_env=extra_env
        )
        try:
            stack.migrate()
            cache.clear()  # rate-limit buckets of an earlier run's application ids (ids restart in a new database)
            with override_settings(
                STRIPE_API_BASE=stack.stripe_api_base,
                STRIPE_JS_URL=f"{stack.stripe_api_base}/js.stripe.com/v3/",
                STRIPE_SECRET_KEY="sk_test_localstripe",
                SITE_ROOT=stack.site_root,
            ):
                synced = PeriodicTasks.last_change()
                stack.start()
                wait_until(lambda: PeriodicTasks.last_change() != synced, message="beat to write its schedule")
                _shorten_beat_intervals(stack)
                yield stack
        finally:
            stack.stop()
            connection.close()
            connection.settings_dict["NAME"] = test_name
            _drop_database(connection, system_name)
            if request.session.testsfailed == failures_before:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                print(f"\nThe system test's processes logged to {stack.log_path}")


def _create_database(connection, test_name: str, workdir) -> str:
    if connection.vendor == "sqlite":
        return str(workdir / "system.sqlite3")
    name = f"{test_name}_system"
    with connection._nodb_cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_database(connection, name: str) -> None:
    if connection.vendor != "sqlite":
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _shorten_beat_intervals(stack) -> None:
    """Every entry every few seconds, through beat's rows (once beat has written CELERY_BEAT_SCHEDULE to them)."""
    every, _ = IntervalSchedule.objects.get_or_create(every=BEAT_EVERY_SECONDS, period=IntervalSchedule.SECONDS)
    for task in PeriodicTask.objects.exclude(task__startswith="celery."):
        task.interval, task.crontab = every, None
        task.save()  # through the model, so beat's change tracking sees it
    sent = "Sending due task billing: close billing periods"
    before = stack.log("beat").count(sent)  # every 5 minutes as declared: twice more means beat took the change
    # Beat notices the change at its next sync; under CI's load (SQLite's lock waits, two test processes and the
    # whole stack on two cores) that once took more than 60 s. Wait longer, and say what beat was doing if not.
    try:
        wait_until(lambda: stack.log("beat").count(sent) >= before + 2, timeout=BEAT_CHANGE_TIMEOUT, message="")
    except AssertionError:
        tail = "\n".join(stack.log("beat").splitlines()[-40:])
        raise AssertionError(
            f"beat did not run on the shortened schedule within {BEAT_CHANGE_TIMEOUT}s; its log ends:\n{tail}"
        ) from None
