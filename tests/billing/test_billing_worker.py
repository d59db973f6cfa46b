"""Billing's Celery tasks on a real worker and broker: idempotent when run twice at once, and scheduled by beat."""

import pytest
from django_celery_beat.models import PeriodicTask

from billing import lifecycle
from billing.models import BillingPeriod, UsageAlert
from billing.tasks import (
    charge_due_invoices,
    charge_invoice,
    close_billing_periods,
    open_billing_periods,
    reconcile_payments,
    run_dunning,
    send_pending_usage_alerts,
    send_usage_alert,
)
from tests.factories import TeamFactory


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_of_the_period_task_open_each_period_once(celery_worker, wait_for):
    teams = [TeamFactory() for _ in range(5)]

    open_billing_periods.apply_async(queue=celery_worker.queue)
    open_billing_periods.apply_async(queue=celery_worker.queue)

    def all_open():
        return BillingPeriod.objects.filter(team__in=teams).count() >= len(teams)

    assert wait_for(all_open, timeout=30), celery_worker.log.read_text()[-3000:]
    assert wait_for(lambda: celery_worker.log.read_text().count("open_billing_periods") >= 4, timeout=30)
    assert BillingPeriod.objects.filter(team__in=teams).count() == len(teams)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_emails_a_usage_alert_once(celery_worker, wait_for, make_member, smtp_server):
    owner = make_member("owner")
    team = owner.team
    alert = UsageAlert.objects.create(period=lifecycle.current_period(team.pk), kind="requests_80")

    send_usage_alert.apply_async((alert.pk,), queue=celery_worker.queue)
    send_usage_alert.apply_async((alert.pk,), queue=celery_worker.queue)

    def emailed():
        alert.refresh_from_db()
        return alert.emailed_at is not None

    assert wait_for(emailed, timeout=30), celery_worker.log.read_text()[-3000:]
    stamped = alert.emailed_at
    assert wait_for(lambda: "send_usage_alert" in celery_worker.log.read_text() and
                    celery_worker.log.read_text().count(": False") >= 1, timeout=30)  # fmt: skip
    alert.refresh_from_db()
    assert alert.emailed_at == stamped
    # The alert's email went through the outbox: queued with the stamp, sent by the worker to the mail server.
    assert wait_for(lambda: smtp_server.to(owner.user.email), timeout=30), celery_worker.log.read_text()[-3000:]
    assert [m["Subject"] for m in smtp_server.to(owner.user.email)] == [
        "Acme Mobility has used 80% of its API requests this period"
    ]


@pytest.mark.django_db
def test_beat_has_the_billing_tasks_registered_by_migration():
    tasks = dict(PeriodicTask.objects.values_list("task", "interval__every"))
    assert tasks["billing.tasks.open_billing_periods"] == 15 * 60
    assert tasks["billing.tasks.send_pending_usage_alerts"] == 5 * 60
    assert tasks["billing.tasks.close_billing_periods"] == 5 * 60
    assert tasks["vehicles.tasks.purge_idempotency_keys"] == 3600
    assert tasks["billing.tasks.charge_due_invoices"] == 5 * 60
    assert tasks["billing.tasks.run_dunning"] == 3600
    assert tasks["billing.tasks.reconcile_payments"] == 24 * 3600


def test_billing_tasks_are_acknowledged_late():
    tasks = (open_billing_periods, send_pending_usage_alerts, send_usage_alert, close_billing_periods,
             charge_invoice, charge_due_invoices, run_dunning, reconcile_payments)  # fmt: skip
    for task in tasks:
        assert task.acks_late is True and task.reject_on_worker_lost is True
