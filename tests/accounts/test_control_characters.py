"""One-line fields (names, subjects) refuse control characters with a form error, and an email whose subject comes
from a name stored before that check is still sent, on one line: no request answers 500 and nothing is half-done."""

import pytest
from django.core import mail
from django.urls import reverse

from accounts.forms import ApplicationNameForm, TeamNameForm
from accounts.models import AuditEvent, Invitation, Team
from accounts.roles import Role
from accounts.views.tokens import PersonalTokenForm
from billing.forms import BillingDetailsForm
from garage.forms import GarageApplicationForm
from sales.forms import ContactSalesForm
from support.forms import TicketForm
from tests.conftest import login_as
from vehicles.forms import SimulatedVehicleForm

pytestmark = pytest.mark.django_db

INJECTION = "Acme\rBcc: x@evil.example"
ONE_LINE = "Use one line of text, without line breaks, tabs or other control characters."


@pytest.fixture
def owner_membership(make_member):
    return make_member(Role.OWNER)


def test_a_new_team_named_with_a_carriage_return_is_refused_and_nothing_is_stored(client, owner_membership):
    login_as(client, owner_membership)

    response = client.post(reverse("team_create"), {"name": INJECTION})

    assert response.status_code == 400
    assert ONE_LINE in response.content.decode()
    assert list(Team.objects.values_list("name", flat=True)) == ["Acme Mobility"]


def test_renaming_a_team_with_a_carriage_return_is_refused_and_the_name_kept(client, team, owner_membership):
    login_as(client, owner_membership)

    response = client.post(reverse("team_rename"), {"name": INJECTION})

    assert response.status_code == 400
    assert ONE_LINE in response.content.decode()
    team.refresh_from_db()
    assert team.name == "Acme Mobility" and not AuditEvent.objects.filter(action="team.renamed").exists()


def test_a_team_named_with_a_carriage_return_earlier_still_sends_its_invitation_on_one_line(
    client, team, owner_membership, send_queued_emails
):
    Team.objects.filter(pk=team.pk).update(name=INJECTION)  # stored before names were checked (or by staff)
    login_as(client, owner_membership)

    response = client.post(reverse("team_invite"), {"email": "newcomer@example.com", "role": Role.VIEWER})

    assert response.status_code == 302
    assert Invitation.objects.filter(team=team, email="newcomer@example.com").exists()
    assert send_queued_emails() == 1
    [message] = mail.outbox
    assert message.subject == "You're invited to join Acme Bcc: x@evil.example on Ignition"
    headers = message.message()
    assert headers["Bcc"] is None and headers["To"] == "newcomer@example.com"


@pytest.mark.parametrize(
    "make_form, field",
    [
        (lambda data: TeamNameForm(data), "name"),
        (lambda data: ApplicationNameForm(data), "name"),
        (lambda data: PersonalTokenForm(data), "name"),
        (lambda data: TicketForm(data, channel="email"), "subject"),
        (lambda data: ContactSalesForm(data), "company"),
        (lambda data: GarageApplicationForm(data), "company_name"),
        (lambda data: GarageApplicationForm(data), "contact_name"),
        (lambda data: BillingDetailsForm(data), "company_name"),
        (lambda data: BillingDetailsForm(data), "tax_id"),
        (lambda data: SimulatedVehicleForm(data, make_choices=[], owner_choices=[]), "model"),
    ],
)
@pytest.mark.parametrize("value", [INJECTION, "Acme\nFleet", "Acme\tFleet", "Acme\x1b[31m", "Acme\u2028Fleet"])
def test_every_one_line_field_refuses_control_characters(make_form, field, value):
    form = make_form({field: value})
    form.is_valid()
    assert form.errors[field] == [ONE_LINE]
