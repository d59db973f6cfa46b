"""Celery tasks of billing: thin wrappers over the services, safe to run twice or concurrently."""

import stripe
from celery import shared_task

from billing import alerts, cards, closing, contracts, dunning, grants, payments, services


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_usage_alert(alert_id: int) -> bool:
    return alerts.send_usage_alert(alert_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=300)
def send_pending_usage_alerts() -> int:
    sent = 0
    for alert_id in alerts.pending_alert_ids():
        sent += alerts.send_usage_alert(alert_id)
    return sent


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=600)
def open_billing_periods() -> int:
    return services.open_due_periods()


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=900)
def close_billing_periods() -> int:
    invoices = closing.close_due_periods()
    for invoice in invoices:
        if invoice.is_charged_to_card:  # charged now rather than at the next charge_due_invoices sweep
            charge_invoice.delay(invoice.pk)
    return len(invoices)


# Stripe's answers that say "not now, try again": a 429 (Stripe's, or our own budget running out,
# stripe_limits.OutOfStripeBudget), a connection that failed, a 5xx. The run releases its claim as the error leaves
# payments.charge_invoice, so the retry resumes the same attempt (same idempotency key). Exponential backoff with
# full jitter spreads a mass close's retries out; after the last one the attempt stays processing until the nightly
# reconciliation. No Celery rate_limit: it counts per worker node, the shared budget in billing.stripe_limits counts
# every process's requests.
STRIPE_SAYS_RETRY = (stripe.RateLimitError, stripe.APIConnectionError, stripe.APIError)


# Its hard time limit bounds how long a run can hold its claim on a payment attempt (payments.LEASE).
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=payments.CHARGE_TIME_LIMIT,
    autoretry_for=STRIPE_SAYS_RETRY,
    retry_backoff=5,  # seconds: 5, 10, 20, 40, 80, 160 (each drawn between 0 and that)
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
)
def charge_invoice(invoice_id: int, attempt: int | None = None) -> str | None:
    payment = payments.charge_invoice(invoice_id, attempt=attempt)
    return payment.status if payment else None


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=300)
def charge_due_invoices() -> int:
    due = payments.invoices_to_charge()
    for invoice_id in due:
        charge_invoice.delay(invoice_id)
    retries = payments.provider_retries_due()  # attempts Stripe refused as requests, tried again after a wait
    for invoice_id, attempt in retries:
        charge_invoice.delay(invoice_id, attempt)
    return len(due) + len(retries)


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=300)
def run_dunning() -> int:
    to_retry, to_suspend = dunning.due_retries()
    for invoice_id, attempt in to_retry:
        charge_invoice.delay(invoice_id, attempt)
    for team_id in to_suspend:
        dunning.suspend_if_still_due(team_id)
    return len(to_retry) + len(to_suspend)


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=1800)
def reconcile_payments() -> int:
    return payments.reconcile()


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=600)
def send_grant_reminders() -> int:
    return grants.send_due_reminders()


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=300)
def switch_due_contracts() -> int:
    return len(contracts.switch_due_contracts())


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=600)
def mark_overdue_invoices() -> int:
    return len(contracts.mark_overdue_invoices())


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=600)
def detach_replaced_cards() -> int:
    return cards.detach_all_replaced_cards()
