"""Settings of the Celery worker the tests start: the project's, with the tasks it sends going to its own queue.

So a task the worker enqueues itself (the outbox sweep's re-sends, an email queued by a task) is run by the same
worker, and never lands on the default queue that a developer's `make run` worker reads.
"""

import os

from dashboard.settings import *  # noqa: F403

CELERY_TASK_DEFAULT_QUEUE = os.environ["CELERY_TEST_QUEUE"]
