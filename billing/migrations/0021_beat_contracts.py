"""Register the contract schedule (every minute) and the overdue sweep of invoice-paid invoices (hourly)."""

from django.db import migrations

TASKS = [
    ("billing: start and end Enterprise contracts", "billing.tasks.switch_due_contracts", 60),
    ("billing: overdue invoice-paid invoices", "billing.tasks.mark_overdue_invoices", 3600),
]


def register(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, seconds in TASKS:
        every, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.update_or_create(name=name, defaults={"task": task, "interval": every, "enabled": True})


def unregister(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[name for name, _, _ in TASKS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0020_enterprise_contracts"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(register, unregister)]
