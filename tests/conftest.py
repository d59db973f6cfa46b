import pytest
from django.core.cache import cache

from accounts.roles import Role
from tests.factories import MembershipFactory, TeamFactory, UserFactory


@pytest.fixture(autouse=True)
def _fresh_cache():
    # allauth's rate limits live in the cache; start every test from zero.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def team(db):
    return TeamFactory(name="Acme Mobility")


@pytest.fixture
def owner(team):
    return MembershipFactory(team=team, role=Role.OWNER).user


@pytest.fixture
def make_member(team):
    def make(role, *, team=team, email=None):
        kwargs = {"email": email} if email else {}
        return MembershipFactory(team=team, role=role, user=UserFactory(**kwargs))

    return make


@pytest.fixture
def other_team(db):
    """A second tenant with its own Owner, for isolation tests."""
    team = TeamFactory(name="Rival Motors")
    MembershipFactory(team=team, role=Role.OWNER)
    return team


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def login_as(client, membership):
    client.force_login(membership.user)
    session = client.session
    session["current_team_id"] = membership.team_id
    session.save()
    return client
