"""Every task beat runs can be sent the way beat sends it, and succeeds on a real worker.

Beat's database scheduler calls `task.apply_async(...)` with each entry's options; a task whose
limits Celery refuses (a soft limit above the hard one) raised there and was never sent, while every
test called the task directly. This test goes through beat's own code path and a real broker.
"""

import re

import pytest
from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

from dashboard.celery import app, soft_time_limit_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def beat_entries():
    """The schedule as beat has it once started: CELERY_BEAT_SCHEDULE written to its rows, and any other row."""
    app.loader.import_default_modules()  # as beat does at start: tasks found by name run their own apply_async
    scheduler = DatabaseScheduler(app=app, lazy=True)
    scheduler.setup_schedule()
    return scheduler, scheduler.schedule


def test_every_task_in_the_beat_schedule_is_sent_by_beat_and_succeeds_on_a_worker(celery_worker, wait_for):
    scheduler, entries = beat_entries()
    assert set(settings.CELERY_BEAT_SCHEDULE) <= set(entries)

    sent = {}
    for name, entry in entries.items():
        entry.options["queue"] = celery_worker.queue  # this worker's queue, not a developer's `make run` worker's
        result = scheduler.apply_async(entry, advance=False)  # beat's own call; raises SchedulingError if refused
        sent[result.id] = name

    def outcome(task_id):
        match = re.search(rf"\[{task_id}\] (succeeded|raised|retry)", celery_worker.log.read_text())
        return match.group(1) if match else None

    assert wait_for(lambda: all(outcome(task_id) for task_id in sent), timeout=120), (
        f"not run: {[name for task_id, name in sent.items() if not outcome(task_id)]}\n"
        + celery_worker.log.read_text()[-4000:]
    )
    failed = {name: outcome(task_id) for task_id, name in sent.items() if outcome(task_id) != "succeeded"}
    assert failed == {}, celery_worker.log.read_text()[-4000:]


def test_every_task_states_a_hard_limit_its_soft_limit_and_the_broker_agree_with():
    app.loader.import_default_modules()  # what a worker does at start: every app's tasks module
    tasks = [task for name, task in app.tasks.items() if not name.startswith("celery.")]
    assert len(tasks) >= 14
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    for task in tasks:
        assert task.soft_time_limit == soft_time_limit_for(task.time_limit), task.name
        assert task.soft_time_limit < task.time_limit < visibility, task.name  # never redelivered mid-run
        assert task.acks_late and task.reject_on_worker_lost, task.name
