"""Support channels by plan: entitlements read from Plan rows, tickets, the Support tab, and staff replies."""

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from accounts.roles import Role
from billing import grants
from billing.lifecycle import subscription_for
from billing.models import Plan, Subscription
from notifications.outbox import TryLater
from support import services
from support.models import Ticket, TicketMessage
from tests.conftest import login_as
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/support/"
PHONE = "+1 555 0100"


@pytest.fixture
def membership(team, owner):
    return owner.memberships.get(team=team)


@pytest.fixture
def member_client(client, make_member):
    """A Viewer, the least role: any team member may open tickets."""
    return login_as(client, make_member(Role.VIEWER, email="dev@acme.example"))


def on_plan(team, code):
    subscription_for(team.pk)  # the Free subscription exists first, as it does for every team
    Subscription.objects.filter(team=team).update(plan=Plan.objects.get(code=code))


def html(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


def _staff(**kwargs):
    """Staff with an authenticator app, as the back office requires."""
    user = UserFactory(is_staff=True, **kwargs)
    TOTP.activate(user, generate_totp_secret())
    return user


# --- entitlements ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, channels",
    [("free", ["email"]), ("payg", ["chat", "email"]), ("enterprise", ["phone", "chat", "email"])],
)
def test_a_teams_channels_are_its_plans(team, code, channels):
    on_plan(team, code)
    assert services.channels_for(team) == channels


def test_a_garage_grant_adds_one_to_one_and_its_end_removes_it(team):
    assert services.ONE_TO_ONE not in services.channels_for(team)
    grant = grants.start_grant(team_id=team.pk)
    assert services.channels_for(team) == ["email", "one_to_one"]
    assert services.channels_for(team, now=grant.ends_at) == ["email"]


def test_a_free_team_sees_email_only_and_where_chat_and_phone_are_available(owner_client, team):
    page = html(owner_client.get(URL))
    assert 'id="email-form"' in page and "support@ignition.localhost" in page
    assert 'id="chat-form"' not in page
    assert PHONE not in page
    assert "Available on Pay-as-you-go / Enterprise." in page  # chat, from the Plan rows
    assert "Available on Enterprise." in page  # phone
    assert reverse("billing") in page


def test_a_pay_as_you_go_team_has_chat_and_email_but_no_phone(owner_client, team):
    on_plan(team, "payg")
    page = html(owner_client.get(URL))
    assert 'id="email-form"' in page and 'id="chat-form"' in page
    assert PHONE not in page and 'id="support-phone"' not in page
    assert 'id="upsell-phone"' in page and 'id="upsell-chat"' not in page


def test_only_an_enterprise_team_is_shown_the_phone_number(owner_client, team, settings):
    settings.SUPPORT_PHONE = "+1 555 0199"
    assert "+1 555 0199" not in html(owner_client.get(URL))
    on_plan(team, "enterprise")
    page = html(owner_client.get(URL))
    assert 'id="support-phone"' in page and "+1 555 0199" in page
    assert 'id="email-form"' in page and 'id="chat-form"' in page
    assert 'id="upsell-' not in page


def test_a_garage_grant_links_to_the_program_details(owner_client, team):
    garage = reverse("garage")
    assert f'href="{garage}#program-heading"' not in html(owner_client.get(URL))
    grants.start_grant(team_id=team.pk)
    page = html(owner_client.get(URL))
    assert 'id="one-to-one"' in page and f'href="{garage}#program-heading"' in page


def test_editing_a_plan_rows_channels_changes_the_page(owner_client, team):
    free = Plan.objects.get(code="free")
    free.support_channels = ["email", "chat", "phone"]
    free.save()
    page = html(owner_client.get(URL))
    assert 'id="chat-form"' in page and PHONE in page
    free.support_channels = []
    free.save()
    Plan.objects.filter(code="payg").update(support_channels=["email"])
    page = html(owner_client.get(URL))
    assert 'id="email-form"' not in page and 'id="chat-form"' not in page
    assert "Available on Enterprise." in html(owner_client.get(URL))  # chat: payg no longer offers it


def test_a_member_who_cannot_manage_billing_is_told_to_ask_the_owners(member_client):
    page = html(member_client.get(URL))
    assert "Ask your team's Owners" in page and reverse("billing") not in page.split("tickets-heading")[0]


# --- opening tickets ---------------------------------------------------------------------------------------------


def test_any_member_opens_an_email_ticket_and_the_desk_is_emailed(
    member_client, team, django_capture_on_commit_callbacks, send_queued_emails
):
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(URL, {"channel": "email", "subject": "Odometer lag", "body": "It lags."})
    send_queued_emails()
    ticket = Ticket.objects.get(team=team)
    assert response.status_code == 302 and response["Location"] == reverse("support_ticket", args=[ticket.pk])
    assert (ticket.channel, ticket.subject, ticket.body, ticket.status) == ("email", "Odometer lag", "It lags.", "open")
    assert ticket.opened_by.email == "dev@acme.example"
    assert [message.to for message in mail.outbox] == [["support@ignition.localhost"]]
    assert "Odometer lag" in mail.outbox[0].subject


def test_a_mail_server_outage_neither_fails_the_ticket_nor_loses_its_email(
    member_client, team, mail_server_down, django_capture_on_commit_callbacks, send_queued_emails
):
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(URL, {"channel": "email", "subject": "Odometer lag", "body": "It lags."})

    assert response.status_code == 302 and Ticket.objects.filter(team=team).exists()
    with pytest.raises(TryLater, match="ConnectionRefusedError"):  # the worker's first try; it tries again later
        send_queued_emails()
    assert mail.outbox == []

    mail_server_down.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the server is back
    assert send_queued_emails() == 1
    assert [message.to for message in mail.outbox] == [["support@ignition.localhost"]]


def test_a_chat_message_opens_a_chat_ticket_named_after_its_first_line(owner_client, team):
    on_plan(team, "payg")
    response = owner_client.post(URL, {"channel": "chat", "body": "Hi! Is location live?\nThanks"})
    assert response.status_code == 302
    ticket = Ticket.objects.get(team=team)
    assert (ticket.channel, ticket.subject) == ("chat", "Hi! Is location live?")


@pytest.mark.parametrize("channel", ["chat", "phone", "carrier-pigeon"])
def test_a_free_team_cannot_open_a_ticket_on_a_channel_it_lacks(owner_client, team, channel, send_queued_emails):
    response = owner_client.post(URL, {"channel": channel, "subject": "Hello", "body": "Let me in"})
    send_queued_emails()
    assert response.status_code == 400
    assert not Ticket.objects.exists()
    assert mail.outbox == []


def test_the_service_refuses_a_channel_with_a_clear_error(membership):
    with pytest.raises(services.SupportError, match="does not include chat support; it is available on Pay-as"):
        services.open_ticket(membership, "chat", "Hi", "Hello")
    assert not Ticket.objects.exists()


def test_an_email_ticket_without_subject_or_body_gives_field_errors(owner_client, team):
    response = owner_client.post(URL, {"channel": "email", "subject": "", "body": ""})
    assert response.status_code == 200
    assert "Give your question a subject." in html(response) and "Write your question first." in html(response)
    assert not Ticket.objects.exists()


def test_a_subject_with_a_carriage_return_is_a_form_error_and_nothing_is_stored(owner_client, send_queued_emails):
    response = owner_client.post(URL, {"channel": "email", "subject": "Help\rBcc: x@evil.example", "body": "Hi"})

    assert response.status_code == 200
    assert response.context["forms"]["email"].errors == {
        "subject": ["Use one line of text, without line breaks, tabs or other control characters."]
    }
    assert not Ticket.objects.exists()
    assert send_queued_emails() == 0 and mail.outbox == []


def test_a_reply_to_a_ticket_whose_subject_has_a_carriage_return_is_emailed_on_one_line(
    membership, owner, send_queued_emails
):
    ticket = services.open_ticket(membership, "email", "Help", "Body")
    Ticket.objects.filter(pk=ticket.pk).update(subject="Help\rBcc: x@evil.example")  # stored before the check
    send_queued_emails()
    mail.outbox.clear()

    services.reply_as_staff(ticket.pk, _staff(), "On it.")

    assert send_queued_emails() == 1
    [email] = mail.outbox
    assert email.subject == f"Re: Help Bcc: x@evil.example [ticket #{ticket.pk}]" and email.to == [owner.email]
    assert email.message()["Bcc"] is None


def test_a_too_long_subject_or_body_is_refused(owner_client):
    response = owner_client.post(URL, {"channel": "email", "subject": "s" * 201, "body": "b" * 5001})
    assert set(response.context["forms"]["email"].errors) == {"subject", "body"}
    assert not Ticket.objects.exists()


# --- listing and tenancy -----------------------------------------------------------------------------------------


def test_tickets_are_listed_twenty_a_page_newest_first(owner_client, membership):
    for n in range(25):
        services.open_ticket(membership, "email", f"Question {n:02}", "Body")
    first = owner_client.get(URL)
    assert [t.subject for t in first.context["tickets"]][:2] == ["Question 24", "Question 23"]
    assert len(first.context["tickets"]) == 20 and 'rel="next"' in html(first)
    second = owner_client.get(URL + "?page=2")
    assert [t.subject for t in second.context["tickets"]] == [f"Question {n:02}" for n in range(4, -1, -1)]


def test_another_teams_tickets_are_neither_listed_nor_reachable(owner_client, other_team):
    theirs = services.open_ticket(other_team.memberships.get(), "email", "Rival secret", "Body")
    assert "Rival secret" not in html(owner_client.get(URL))
    assert owner_client.get(reverse("support_ticket", args=[theirs.pk])).status_code == 404
    assert owner_client.post(reverse("support_ticket", args=[theirs.pk]), {"action": "close"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "open"


def test_the_ticket_page_shows_the_thread_and_a_member_can_close_it(owner_client, membership, owner):
    ticket = services.open_ticket(membership, "email", "Token help", "How do I refresh?")
    services.reply_as_staff(ticket.pk, _staff(), "Use the refresh token.")
    url = reverse("support_ticket", args=[ticket.pk])
    page = html(owner_client.get(url))
    assert "How do I refresh?" in page and "Use the refresh token." in page and "Answered" in page
    owner_client.post(url, {"action": "close"})
    ticket.refresh_from_db()
    assert ticket.status == "closed"
    closed = ticket.messages.get(kind="closed")
    assert (closed.author, closed.from_staff) == (owner, False)


def test_logged_out_visitors_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/login" in response["Location"]


# --- staff -------------------------------------------------------------------------------------------------------


def test_a_staff_reply_is_stored_answers_the_ticket_and_emails_the_opener(
    membership, owner, django_capture_on_commit_callbacks, send_queued_emails
):
    ticket = services.open_ticket(membership, "email", "VIN missing", "No VIN for car 3")
    staff = _staff(email="agent@ignition.example")
    send_queued_emails()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        message = services.reply_as_staff(ticket.pk, staff, "Fixed, please retry.")
    send_queued_emails()
    ticket.refresh_from_db()
    assert ticket.status == "answered"
    assert (message.author, message.from_staff, message.body) == (staff, True, "Fixed, please retry.")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [owner.email]
    assert "VIN missing" in mail.outbox[0].subject and "Fixed, please retry." in mail.outbox[0].body


def test_only_staff_reply_and_a_closed_ticket_takes_no_reply(membership, owner):
    ticket = services.open_ticket(membership, "email", "Q", "B")
    with pytest.raises(PermissionDenied):
        services.reply_as_staff(ticket.pk, owner, "I am not staff")
    services.close_ticket(ticket.pk, actor=owner)
    with pytest.raises(services.SupportError, match="closed"):
        services.reply_as_staff(ticket.pk, _staff(), "Too late")
    assert not TicketMessage.objects.filter(kind="reply").exists()


@pytest.fixture
def staff_client(client):
    client.force_login(_staff(email="ops@example.com", is_superuser=True))
    return client


CHANGELIST = reverse("admin:support_ticket_changelist")


def test_staff_list_filter_and_search_tickets(staff_client, membership, other_team, team):
    on_plan(team, "payg")
    chat = services.open_ticket(membership, "chat", "", "Live chat question")
    email = services.open_ticket(other_team.memberships.get(), "email", "Invoice copy", "Please")
    services.close_ticket(email.pk, actor=None)

    def listed(query):
        return {t.pk for t in staff_client.get(CHANGELIST + query).context["cl"].result_list}

    assert listed("") == {chat.pk, email.pk}
    assert listed("?status__exact=closed") == {email.pk}
    assert listed("?channel__exact=chat") == {chat.pk}
    assert listed("?q=Invoice") == {email.pk}
    assert listed("?q=Rival") == {email.pk}


def test_staff_reply_from_the_change_page_emails_the_opener(
    staff_client, membership, owner, django_capture_on_commit_callbacks, send_queued_emails
):
    ticket = services.open_ticket(membership, "email", "Webhook 500s", "Our webhook fails")
    change = reverse("admin:support_ticket_change", args=[ticket.pk])
    page = html(staff_client.get(change))
    assert "Our webhook fails" in page and reverse("admin:support_ticket_reply", args=[ticket.pk]) in page
    send_queued_emails()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse("admin:support_ticket_reply", args=[ticket.pk]), {"body": "Retrying now."})
    send_queued_emails()
    assert response.status_code == 302 and response["Location"] == change
    reply = ticket.messages.get()
    assert (reply.body, reply.from_staff, reply.author.email) == ("Retrying now.", True, "ops@example.com")
    assert [m.to for m in mail.outbox] == [[owner.email]]
    assert "Retrying now." in html(staff_client.get(change))  # the thread inline


def test_staff_close_tickets_with_the_action_and_it_is_recorded(staff_client, membership):
    ticket = services.open_ticket(membership, "email", "Q", "B")
    staff_client.post(CHANGELIST, {"action": "close_selected", "_selected_action": [ticket.pk]})
    ticket.refresh_from_db()
    assert ticket.status == "closed"
    closed = ticket.messages.get()
    assert (closed.kind, closed.from_staff, closed.author.email) == ("closed", True, "ops@example.com")


def test_non_staff_cannot_reach_the_admin_or_reply(client, membership, owner):
    ticket = services.open_ticket(membership, "email", "Q", "B")
    client.force_login(owner)
    for url in [CHANGELIST, reverse("admin:support_ticket_reply", args=[ticket.pk])]:
        response = client.post(url, {"body": "sneaky"})
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url
    assert not ticket.messages.exists()
