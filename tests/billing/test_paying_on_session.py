"""Paying a past-due invoice on its pay page, against localstripe: with a new card, or by confirming the
payment the bank wants authenticated (3-D Secure), never paying twice, and lifting a suspension at once.

Stripe.js's step (confirming the PaymentIntent in the browser) is done here by calling localstripe's
authentication route exactly as its Stripe.js does; tests/e2e/test_paying_in_a_browser.py drives the page.
"""

import json
import re
import urllib.request
from datetime import timedelta

import pytest
import stripe
import time_machine
from django.conf import settings
from django.core import mail
from django.utils import timezone

from accounts.roles import Role
from billing import cards, dunning, metering, payments, tasks
from billing.models import Invoice, Payment, Subscription
from billing.stripe_gateway import stripe_client
from tests.billing.test_card_page import card_form, confirm_in_the_browser, reauthenticate, store
from tests.billing.test_dunning import run_dunning_at
from tests.billing.test_payments import intents_for, pay_as_you_go_invoice, store_card
from tests.billing.usage import count_billable_requests

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("stripe_settings")]

# Test PaymentMethods (https://docs.stripe.com/testing): NEEDS_3DS is 4000 0027 6000 3184, which needs the bank's
# check on every payment, off-session ones included (4000 0025 0000 3155 needs it on setup only: Stripe then charges
# it off-session without one).
VISA, DECLINED_ON_CHARGE, NEEDS_3DS = "pm_card_visa", "pm_card_chargeCustomerFail", "pm_card_authenticationRequired"


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER, email="on-session@example.com")


@pytest.fixture
def owner_client(client, owner_membership):
    client.force_login(owner_membership.user)
    return client


def store_3ds_card(owner):
    """Card 4000 0027 6000 3184 stored as Stripe.js does it: confirmed, then the bank's check answered."""
    intent = cards.start_card_setup(owner)
    stripe_client().v1.setup_intents.confirm(intent.id, params={"payment_method": NEEDS_3DS})
    stripe_client().v1.setup_intents.confirm(intent.id)  # "Complete authentication" in the dialog
    return cards.finish_card_setup(owner, intent.id)


def past_due_invoice(owner, card: str, requests: int = 20) -> Invoice:
    """An invoice whose scheduled charge failed with this card."""
    if card == NEEDS_3DS:
        store_3ds_card(owner)
    else:
        store_card(owner, card)
    invoice = pay_as_you_go_invoice(owner, requests)
    payments.charge_invoice(invoice.pk)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAST_DUE
    return invoice


def authenticate_in_the_browser(intent_id: str, client_secret: str, *, success: bool = True):
    """What localstripe's Stripe.js does when the Owner answers its 3-D Secure dialog."""
    url = f"{settings.STRIPE_API_BASE}/v1/payment_intents/{intent_id}/_authenticate?success={str(success).lower()}"
    body = json.dumps({"key": "pk_test_ignition", "client_secret": client_secret}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST")) as response:
        return json.loads(response.read())


def pay_url(invoice: Invoice) -> str:
    return f"/billing/invoices/{invoice.public_id}/pay/"


def pay_now(client, invoice: Invoice, *, page: str | None = None, **kwargs):
    """Click "Pay now": post the form with the attempt number the page carries."""
    page = page or client.get(pay_url(invoice)).content.decode()
    attempt = re.search(r'name="attempt" value="(\d+)"', page).group(1)
    return client.post(pay_url(invoice), {"attempt": attempt}, **kwargs)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_declined_then_dunning_then_suspension_then_the_owner_pays_with_another_card_and_it_is_lifted(
    owner_membership, owner_client, django_capture_on_commit_callbacks, send_queued_emails
):
    invoice = past_due_invoice(owner_membership, DECLINED_ON_CHARGE)
    failed_at = Payment.objects.get(invoice=invoice).updated_at
    for day in (1, 3, 5):  # dunning's retries fail too…
        assert run_dunning_at(failed_at + timedelta(days=day, minutes=1)) == ([invoice.pk], [])
    assert run_dunning_at(failed_at + timedelta(days=5, minutes=5)) == ([], [owner_membership.team_id])  # …suspended
    next_period = time_machine.travel(invoice.period.end + timedelta(hours=3), tick=False)
    with next_period, pytest.raises(metering.LimitReached, match="ACCOUNT_SUSPENDED"):
        count_billable_requests(owner_membership.team, 1)
    page = owner_client.get(pay_url(invoice))
    assert "Billable API requests are suspended" in page.content.decode()
    assert "Use another card" in page.content.decode()

    store_card(owner_membership, VISA)  # what the card page does (tested in test_card_page.py)
    page = owner_client.get(pay_url(invoice))
    assert "Pay $3.00 with Visa •••• 4242" in page.content.decode()
    send_queued_emails()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = pay_now(owner_client, invoice, follow=True)
    send_queued_emails()

    invoice.refresh_from_db()
    assert (invoice.status, response.redirect_chain[-1][0]) == ("paid", f"/billing/invoices/{invoice.public_id}/")
    assert f"Thank you: invoice {invoice.number} ($3.00) is paid." in messages_of(response)
    assert Subscription.objects.get(team_id=invoice.team_id).status == "active"
    with time_machine.travel(invoice.period.end + timedelta(hours=3), tick=False):  # in the next, open period
        count_billable_requests(owner_membership.team, 1)  # billable requests work again at once
    statuses = sorted(intent.status for intent in intents_for(invoice))
    assert statuses == ["canceled"] * 4 + ["succeeded"]  # the declined PaymentIntents can never be paid later
    assert [m.subject for m in mail.outbox] == [f"Receipt for Ignition invoice {invoice.number}"]
    assert dunning.due_retries(invoice.issued_at + timedelta(days=30)) == ([], [])


def test_a_payment_the_bank_wants_authenticated_is_confirmed_on_the_page(owner_membership, owner_client):
    invoice = past_due_invoice(owner_membership, NEEDS_3DS)
    (scheduled,) = Payment.objects.filter(invoice=invoice)
    assert scheduled.failure_code == "authentication_required"
    intent = stripe_client().v1.payment_intents.retrieve(scheduled.stripe_payment_intent_id)

    page = owner_client.get(pay_url(invoice)).content.decode()
    assert f'data-client-secret="{intent.client_secret}"' in page
    assert f'data-payment-method="{Subscription.objects.get(team_id=invoice.team_id).payment_method_id}"' in page
    assert "Confirm payment of $3.00" in page

    authenticate_in_the_browser(intent.id, intent.client_secret)
    response = owner_client.post(pay_url(invoice), {"payment_intent": intent.id}, follow=True)

    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert f"Thank you: invoice {invoice.number} ($3.00) is paid." in messages_of(response)
    assert [intent.status for intent in intents_for(invoice)] == ["succeeded"]  # no second PaymentIntent


def test_a_failed_authentication_changes_nothing_and_the_owner_can_try_again(
    owner_membership, owner_client, send_queued_emails
):
    invoice = past_due_invoice(owner_membership, NEEDS_3DS)
    first = stripe_client().v1.payment_intents.retrieve(Payment.objects.get(invoice=invoice).stripe_payment_intent_id)
    authenticate_in_the_browser(first.id, first.client_secret, success=False)
    send_queued_emails()
    mail.outbox.clear()

    response = owner_client.post(pay_url(invoice), {"payment_intent": first.id}, follow=True)
    assert "The payment was not confirmed. Try again, or use another card." in messages_of(response)
    invoice.refresh_from_db()
    assert invoice.status == "past_due"
    assert "Pay $3.00 with Visa •••• 3184" in response.content.decode()  # the expired check cannot be retried

    response = pay_now(owner_client, invoice, follow=True)  # "Pay now": a new attempt, the bank asks again
    assert "Your bank asks you to confirm this payment." in messages_of(response)
    second = Payment.objects.filter(invoice=invoice).order_by("attempt").last()
    assert (second.attempt, second.on_session, second.failure_code) == (2, True, "authentication_required")
    assert second.stripe_payment_intent_id in response.content.decode()  # the page now confirms the new one
    send_queued_emails()
    assert mail.outbox == []  # the Owner is on the page: no past-due email for their own try

    intent = stripe_client().v1.payment_intents.retrieve(second.stripe_payment_intent_id)
    authenticate_in_the_browser(intent.id, intent.client_secret)
    owner_client.post(pay_url(invoice), {"payment_intent": intent.id})
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert sorted(intent.status for intent in intents_for(invoice)) == ["canceled", "succeeded"]


def test_a_payment_confirmed_in_the_browser_but_never_reported_is_found_before_charging_again(owner_membership):
    """The Owner authenticated, then closed the tab before the page posted back, and the webhook is late:
    dunning leaves a charge only the Owner can authorize alone, and their next "Pay now" records that payment
    rather than charging the invoice a second time."""
    invoice = past_due_invoice(owner_membership, NEEDS_3DS)
    intent = stripe_client().v1.payment_intents.retrieve(Payment.objects.get(invoice=invoice).stripe_payment_intent_id)
    authenticate_in_the_browser(intent.id, intent.client_secret)

    (due, _) = dunning.due_retries(timezone.now() + timedelta(days=2))
    assert due == []
    assert payments.charge_invoice(invoice.pk, attempt=2, on_session=True) is None

    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert Payment.objects.filter(invoice=invoice).count() == 1
    assert [intent.status for intent in intents_for(invoice)] == ["succeeded"]


def test_a_retry_cancels_the_payment_waiting_for_authentication_so_both_can_never_be_paid(owner_membership):
    invoice = past_due_invoice(owner_membership, NEEDS_3DS)
    waiting = stripe_client().v1.payment_intents.retrieve(Payment.objects.get(invoice=invoice).stripe_payment_intent_id)
    payments.charge_invoice(invoice.pk, attempt=2)  # dunning's retry

    assert stripe_client().v1.payment_intents.retrieve(waiting.id).status == "canceled"
    with pytest.raises(urllib.error.HTTPError):  # the Owner's late confirmation of it is refused by Stripe
        authenticate_in_the_browser(waiting.id, waiting.client_secret)
    assert Payment.objects.filter(invoice=invoice).count() == 2


def test_paying_twice_in_a_row_charges_once(owner_membership, owner_client):
    invoice = past_due_invoice(owner_membership, DECLINED_ON_CHARGE)
    store_card(owner_membership, VISA)
    page = owner_client.get(pay_url(invoice)).content.decode()
    pay_now(owner_client, invoice, page=page)
    response = pay_now(owner_client, invoice, page=page, follow=True)  # a double click, a back-button resubmit

    assert f"Invoice {invoice.number} is paid." in messages_of(response)
    assert [p.status for p in Payment.objects.filter(invoice=invoice).order_by("attempt")] == ["failed", "succeeded"]
    assert sorted(intent.status for intent in intents_for(invoice)) == ["canceled", "succeeded"]


def test_the_owners_failed_tries_neither_email_nor_use_up_the_retry_schedule(
    owner_membership, owner_client, send_queued_emails
):
    invoice = past_due_invoice(owner_membership, DECLINED_ON_CHARGE)
    failed_at = Payment.objects.get(invoice=invoice).updated_at
    send_queued_emails()
    mail.outbox.clear()
    for _ in range(3):
        response = pay_now(owner_client, invoice, follow=True)
        assert "Your card was declined." in messages_of(response)

    send_queued_emails()
    assert mail.outbox == []
    assert Payment.objects.filter(invoice=invoice, on_session=True).count() == 3
    assert dunning.due_retries(failed_at + timedelta(hours=23)) == ([], [])
    assert dunning.due_retries(failed_at + timedelta(days=1, minutes=1)) == ([(invoice.pk, 5)], [])  # still day 1


def test_without_a_card_the_page_leads_to_the_card_form(owner_membership, owner_client):
    invoice = past_due_invoice(owner_membership, DECLINED_ON_CHARGE)
    Subscription.objects.filter(team_id=invoice.team_id).update(payment_method_id="", card_last4="", card_brand="")

    page = owner_client.get(pay_url(invoice)).content.decode()
    assert f'href="/billing/card/?next=pay-{invoice.public_id}"' in page
    assert "Add a card to pay" in page


def test_an_open_or_paid_invoice_has_nothing_to_pay_here(owner_membership, owner_client):
    store_card(owner_membership, VISA)
    invoice = pay_as_you_go_invoice(owner_membership, 5)
    response = owner_client.post(pay_url(invoice), follow=True)
    assert f"Invoice {invoice.number} is charged to your card automatically; nothing to do." in messages_of(response)
    assert Payment.objects.filter(invoice=invoice).count() == 0  # the schedule makes the first charge

    payments.charge_invoice(invoice.pk)
    response = owner_client.get(pay_url(invoice), follow=True)
    assert f"Invoice {invoice.number} is paid." in messages_of(response)


def test_another_invoices_payment_intent_is_refused(owner_membership, owner_client, other_team, make_member):
    invoice = past_due_invoice(owner_membership, NEEDS_3DS)
    other = past_due_invoice(make_member(Role.OWNER, team=other_team), NEEDS_3DS, requests=4)
    foreign = Payment.objects.get(invoice=other).stripe_payment_intent_id

    response = owner_client.post(pay_url(invoice), {"payment_intent": foreign}, follow=True)
    assert "That payment is not one of this invoice's. Start again from this page." in messages_of(response)
    assert [Invoice.objects.get(pk=pk).status for pk in (invoice.pk, other.pk)] == ["past_due", "past_due"]


def test_another_teams_invoice_is_not_found_and_other_roles_are_refused(
    owner_membership, client, other_team, make_member
):
    invoice = past_due_invoice(owner_membership, DECLINED_ON_CHARGE)
    stranger = other_team.memberships.get().user
    client.force_login(stranger)
    assert client.get(pay_url(invoice)).status_code == 404
    assert client.post(pay_url(invoice)).status_code == 404

    client.force_login(make_member(Role.ADMIN).user)
    assert client.post(pay_url(invoice)).status_code == 403
    assert Payment.objects.filter(invoice=invoice).count() == 1


def test_the_banner_and_the_emails_link_to_the_pay_page(
    owner_membership, owner_client, django_capture_on_commit_callbacks, send_queued_emails
):
    store_card(owner_membership, DECLINED_ON_CHARGE)
    invoice = pay_as_you_go_invoice(owner_membership, 4)
    send_queued_emails()
    mail.outbox.clear()  # the plan switch's email; this test is about the charge's
    with django_capture_on_commit_callbacks(execute=True):
        payments.charge_invoice(invoice.pk)
        dunning.suspend(owner_membership.team_id)
    send_queued_emails()

    link = f"/billing/invoices/{invoice.public_id}/pay/"
    assert [m.subject for m in mail.outbox][0].startswith("Payment failed")
    assert all(link in message.body for message in mail.outbox)
    assert f'href="{link}"' in owner_client.get("/overview/").content.decode()


def test_use_another_card_stores_it_and_comes_back_to_the_pay_page(
    owner_membership, owner_client, other_team, make_member
):
    invoice = past_due_invoice(owner_membership, DECLINED_ON_CHARGE)
    reauthenticate(owner_client)
    next_step = f"pay-{invoice.public_id}"
    form = card_form(owner_client, f"/billing/card/?next={next_step}")
    assert f'<input type="hidden" name="next" value="{next_step}">' in form["html"]
    confirm_in_the_browser(form["intent_id"], VISA)

    response = store(owner_client, form["intent_id"], next=next_step)
    assert response["Location"] == pay_url(invoice)
    assert "Pay $3.00 with Visa •••• 4242" in owner_client.get(pay_url(invoice)).content.decode()

    foreign = past_due_invoice(make_member(Role.OWNER, team=other_team), DECLINED_ON_CHARGE, requests=4)
    form = card_form(owner_client, f"/billing/card/?next=pay-{foreign.public_id}")
    assert 'name="next"' not in form["html"]  # another team's invoice is not a place to go back to


@pytest.mark.parametrize(
    "form",
    [{"attempt": ""}, {"attempt": "²"}, {"attempt": "-1"}, {}, {"payment_intent": ""}, {"payment_intent": " "},
     {"payment_intent": "pi_\x00"}, {"payment_intent": "evil"}],
)  # fmt: skip
def test_malformed_forms_change_nothing_and_say_why(owner_membership, owner_client, form):
    invoice = past_due_invoice(owner_membership, DECLINED_ON_CHARGE)
    store_card(owner_membership, VISA)
    Payment.objects.filter(invoice=invoice).update(stripe_payment_intent_id="")  # as if it never reached Stripe

    response = owner_client.post(pay_url(invoice), form, follow=True)

    assert response.status_code == 200
    assert any("out of date" in m or "not one of this invoice's" in m for m in messages_of(response))
    assert Payment.objects.filter(invoice=invoice).count() == 1
    assert Invoice.objects.get(pk=invoice.pk).status == "past_due"


def test_a_stripe_error_while_paying_is_resumed_by_a_worker_without_a_second_charge(
    owner_membership, owner_client, monkeypatch
):
    invoice = past_due_invoice(owner_membership, DECLINED_ON_CHARGE)
    store_card(owner_membership, VISA)
    real_create = payments._create_intent

    def answer_lost(*args, **kwargs):  # Stripe charged the card, then the connection dropped
        real_create(*args, **kwargs)
        raise stripe.APIConnectionError("connection reset")

    monkeypatch.setattr(payments, "_create_intent", answer_lost)
    response = pay_now(owner_client, invoice, follow=True)
    monkeypatch.undo()

    assert "Card payments are unavailable right now. Try again in a few minutes." in messages_of(response)
    second = Payment.objects.get(invoice=invoice, attempt=2)
    assert (second.status, second.stripe_payment_intent_id) == ("processing", "")
    assert "being processed" in owner_client.get(pay_url(invoice)).content.decode()

    assert tasks.charge_invoice(invoice.pk, 2) == "succeeded"  # the resumption the page queued, a minute later

    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert sorted(intent.status for intent in intents_for(invoice)) == ["canceled", "succeeded"]


def test_an_attempt_left_in_flight_on_an_invoice_paid_meanwhile_is_closed_as_superseded(
    owner_membership, owner_client, send_queued_emails
):
    invoice = past_due_invoice(owner_membership, NEEDS_3DS)
    first = Payment.objects.get(invoice=invoice)
    payments._begin_attempt(invoice.pk, attempt=2, on_session=False)  # dunning's worker died right after this
    intent = stripe_client().v1.payment_intents.retrieve(first.stripe_payment_intent_id)
    authenticate_in_the_browser(intent.id, intent.client_secret)  # the Owner pays the first one on-session
    owner_client.post(pay_url(invoice), {"payment_intent": intent.id})
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
    send_queued_emails()
    mail.outbox.clear()

    payments.reconcile(stuck_after=timedelta(0))

    orphan = Payment.objects.get(invoice=invoice, attempt=2)
    assert (orphan.status, orphan.failure_code) == ("failed", "superseded")
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"  # never back to past due
    assert Subscription.objects.get(team_id=invoice.team_id).status == "active"
    send_queued_emails()
    assert mail.outbox == []  # no "payment failed" for a paid invoice
    assert [intent.status for intent in intents_for(invoice)] == ["succeeded"]
