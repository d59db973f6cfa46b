"""Register billing's periodic tasks with django-celery-beat (the DatabaseScheduler reads these rows).

Every task here is safe to run twice or concurrently; staff can change the intervals in the admin.
"""

from django.db import migrations

TASKS = [
    ("billing: open billing periods", "billing.tasks.open_billing_periods", 15 * 60),
    ("billing: send pending usage alerts", "billing.tasks.send_pending_usage_alerts", 5 * 60),
]


def register(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds in TASKS:
        every, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.update_or_create(name=name, defaults={"task": task, "interval": every, "enabled": True})


def unregister(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, _, _ in TASKS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_seed_plans"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(register, unregister)]
