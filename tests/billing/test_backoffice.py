"""Staff's money actions in the admin, against localstripe: void, mark paid, resend, replay a failed Stripe event;
refused when they would corrupt money (a paid invoice, a charge in flight), audited, and staff only."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core import mail

from accounts.roles import Role
from billing import backoffice, dunning, lifecycle, payments
from billing.models import BillingEvent, Invoice, Payment, StripeEvent, Subscription
from tests.billing.test_billing_admin import staff_client  # noqa: F401 (fixture)
from tests.billing.test_paying_on_session import NEEDS_3DS, authenticate_in_the_browser, past_due_invoice
from tests.billing.test_payments import intents_for, pay_as_you_go_invoice, store_card

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]

DECLINED_ON_CHARGE = "pm_card_chargeCustomerFail"
CHANGELIST = "/admin/billing/invoice/"


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="books@example.com")


def status_of(invoice) -> str:
    return Invoice.objects.get(pk=invoice.pk).status


def test_voiding_a_past_due_invoice_cancels_its_payment_and_lifts_the_suspension(owner_membership, staff_client):  # noqa: F811
    invoice = past_due_invoice(owner_membership, NEEDS_3DS)
    dunning.suspend(owner_membership.team_id)
    waiting = intents_for(invoice)[0]
    staff = staff_client.get("/admin/").wsgi_request.user

    backoffice.void_invoice(invoice.pk, staff=staff, reason="Goodwill: simulator outage")

    assert status_of(invoice) == "void"
    assert Subscription.objects.get(team_id=invoice.team_id).status == "active"
    assert intents_for(invoice)[0].status == "canceled"
    with pytest.raises(Exception):  # noqa: B017 - the customer's late confirmation is refused by Stripe
        authenticate_in_the_browser(waiting.id, waiting.client_secret)
    event = BillingEvent.objects.get(team_id=invoice.team_id, kind="invoice")
    assert (event.actor, event.after["action"], event.after["note"]) == (staff, "voided", "Goodwill: simulator outage")
    assert payments.charge_invoice(invoice.pk, attempt=2) is None  # dunning leaves it alone
    assert dunning.due_retries(invoice.issued_at + timedelta(days=10)) == ([], [])


def test_an_invoice_the_customer_paid_meanwhile_is_recorded_not_voided(owner_membership):
    invoice = past_due_invoice(owner_membership, NEEDS_3DS)
    intent = intents_for(invoice)[0]
    authenticate_in_the_browser(intent.id, intent.client_secret)  # paid on-session; the webhook is late

    with pytest.raises(backoffice.BackOfficeError, match="paid this invoice meanwhile"):
        backoffice.void_invoice(invoice.pk, staff=None, reason="Oops")

    assert status_of(invoice) == "past_due"  # not voided; the payment is recorded by its webhook or…
    payments.reconcile(stuck_after=timedelta(0))  # …the reconciliation
    assert status_of(invoice) == "paid"


def test_paid_void_or_in_flight_invoices_cannot_be_changed(owner_membership):
    store_card(owner_membership, "pm_card_visa")
    paid = pay_as_you_go_invoice(owner_membership, 4)
    payments.charge_invoice(paid.pk)
    with pytest.raises(backoffice.BackOfficeError, match="paid already"):
        backoffice.void_invoice(paid.pk, staff=None, reason="No")
    with pytest.raises(backoffice.BackOfficeError, match="Say why"):
        backoffice.mark_invoice_paid(paid.pk, staff=None, reference=" ")


def test_marking_paid_records_the_reference_and_the_resent_email_says_received(
    owner_membership, django_capture_on_commit_callbacks, send_queued_emails
):
    invoice = past_due_invoice(owner_membership, DECLINED_ON_CHARGE)
    backoffice.mark_invoice_paid(invoice.pk, staff=None, reference="Wire 2026-11-30 #4471")
    assert status_of(invoice) == "paid"
    assert Subscription.objects.get(team_id=invoice.team_id).status == "active"
    send_queued_emails()
    mail.outbox.clear()

    assert backoffice.resend_invoice_email(invoice.pk, staff=None) == "invoice-paid"
    send_queued_emails()

    assert f"We received your payment of $3.00 for invoice {invoice.number}." in mail.outbox[0].body
    assert "card on file" not in mail.outbox[0].body
    actions = [e.after["action"] for e in BillingEvent.objects.filter(kind="invoice").order_by("created_at")]
    assert actions == ["marked_paid", "resent"]


def test_a_failed_stripe_event_is_replayed_and_an_applied_one_is_not(owner_membership, monkeypatch):
    store_card(owner_membership, "pm_card_visa")
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    monkeypatch.setattr(payments, "_finish", lambda *a, **k: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        payments.charge_invoice(invoice.pk)
    monkeypatch.undo()
    intent = intents_for(invoice)[0]
    event = StripeEvent.objects.create(
        event_id="evt_replay_me",
        type="payment_intent.succeeded",
        payload={"data": {"object": {"id": intent.id}}},
        error="ConnectionError('database restarting')",
    )

    replayed = backoffice.replay_stripe_event(event.pk, staff=None)

    assert replayed.error == ""
    assert status_of(invoice) == "paid"
    with pytest.raises(backoffice.BackOfficeError, match="nothing to replay"):
        backoffice.replay_stripe_event(event.pk, staff=None)


def test_staff_void_from_the_admin_with_a_reason(owner_membership, staff_client):  # noqa: F811
    invoice = past_due_invoice(owner_membership, DECLINED_ON_CHARGE)
    form = {"action": "void_invoices", ACTION_CHECKBOX_NAME: [invoice.pk]}

    page = staff_client.post(CHANGELIST, form)
    assert page.status_code == 200 and "Void invoices" in page.content.decode()  # the reason is asked first
    assert "Reason for voiding" in page.content.decode()
    marking = staff_client.post(CHANGELIST, {**form, "action": "mark_invoices_paid"}).content.decode()
    assert "Payment reference" in marking  # the field says what it asks
    assert status_of(invoice) == "past_due"
    staff_client.post(CHANGELIST, {**form, "confirm": "yes", "note": ""})  # no reason: nothing changes
    assert status_of(invoice) == "past_due"

    response = staff_client.post(CHANGELIST, {**form, "confirm": "yes", "note": "Duplicate period"}, follow=True)

    assert status_of(invoice) == "void"
    assert "Voided 1 invoice." in response.content.decode()
    assert staff_client.get(f"/admin/billing/invoice/{invoice.pk}/change/").status_code == 200  # viewable, read-only


def test_non_staff_cannot_reach_the_invoice_actions(owner_membership, client):
    invoice = past_due_invoice(owner_membership, DECLINED_ON_CHARGE)
    client.force_login(owner_membership.user)
    client.post(CHANGELIST, {"action": "void_invoices", ACTION_CHECKBOX_NAME: [invoice.pk], "confirm": "yes",
                             "note": "me"})  # fmt: skip
    assert status_of(invoice) == "past_due"
    assert Payment.objects.filter(invoice=invoice).count() == 1


def test_the_teams_admin_page_shows_its_billing(owner_membership, staff_client):  # noqa: F811
    store_card(owner_membership, "pm_card_visa")
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    page = staff_client.get(f"/admin/accounts/team/{owner_membership.team_id}/change/").content.decode()
    assert invoice.number in page and "Pay-as-you-go" in page


def test_a_charge_that_succeeds_on_a_voided_invoice_leaves_it_void_and_is_flagged(owner_membership, caplog):
    invoice = past_due_invoice(owner_membership, NEEDS_3DS)
    payment = Payment.objects.get(invoice=invoice)
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.VOID)  # voided as the customer paid
    intent = intents_for(invoice)[0]
    authenticate_in_the_browser(intent.id, intent.client_secret)

    payments.record_intent(payment, payments.stripe_client().v1.payment_intents.retrieve(intent.id))

    assert status_of(invoice) == "void"
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"  # the truth about the money, kept
    assert f"Invoice {invoice.number} (void) was paid by attempt 1: refund it" in caplog.text


def test_subscriptions_are_read_only_in_the_admin(owner_membership, staff_client):  # noqa: F811
    metering_subscription = lifecycle.subscription_for(owner_membership.team_id)
    url = f"/admin/billing/subscription/{metering_subscription.pk}/change/"
    staff_client.post(url, {"status": "active", "card_on_file": "on", "payment_method_id": "pm_someone_else"})
    assert Subscription.objects.get(pk=metering_subscription.pk).payment_method_id == ""
    assert staff_client.get("/admin/billing/subscription/add/").status_code == 403
