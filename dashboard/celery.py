import os

from celery import Celery, Task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")


def soft_time_limit_for(time_limit: float) -> float:
    """The soft limit that goes with a hard one: a tenth earlier (at least 10 s), so the task can roll back cleanly.

    Celery refuses to send a task whose soft limit exceeds its hard limit, so the soft limit is never
    stated on its own: every task states only its hard limit (or takes CELERY_TASK_TIME_LIMIT) and
    gets its soft limit from here.
    """
    return time_limit - max(10, time_limit // 10)


class IgnitionTask(Task):
    """The base of every task: its soft time limit follows from its hard one."""

    @classmethod
    def bind(cls, app):
        bound = super().bind(app)  # fills unset limits from the settings
        if cls.time_limit and not cls.soft_time_limit:
            cls.soft_time_limit = soft_time_limit_for(cls.time_limit)
        return bound


app = Celery("ignition", task_cls=IgnitionTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
