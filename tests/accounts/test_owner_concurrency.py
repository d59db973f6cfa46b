"""The last-Owner rule holds when two Owners act at the same moment (PostgreSQL row locks)."""

import threading

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection

from accounts import teams
from accounts.exceptions import TeamRuleError
from accounts.models import Membership
from accounts.roles import Role

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_at_once(*calls):
    """Run each call in its own thread and database connection, released together."""
    barrier = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)

    def runner(index, call):
        try:
            barrier.wait()
            call()
            outcomes[index] = "ok"
        except (TeamRuleError, PermissionDenied) as error:
            outcomes[index] = type(error).__name__
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.parametrize("attempt", range(5))
def test_two_owners_demoting_each_other_at_once_leave_one_owner(team, make_member, attempt):
    alice = make_member(Role.OWNER)
    bob = make_member(Role.OWNER)

    outcomes = run_at_once(
        lambda: teams.change_role(actor=Membership.objects.get(pk=alice.pk), membership_id=bob.pk, role=Role.ADMIN),
        lambda: teams.change_role(actor=Membership.objects.get(pk=bob.pk), membership_id=alice.pk, role=Role.ADMIN),
    )

    assert sorted(outcomes) == ["PermissionDenied", "ok"]
    assert Membership.objects.filter(team=team, role=Role.OWNER).count() == 1


@pytest.mark.parametrize("attempt", range(5))
def test_two_owners_leaving_at_once_leave_one_owner(team, make_member, attempt):
    alice = make_member(Role.OWNER)
    bob = make_member(Role.OWNER)

    outcomes = run_at_once(
        lambda: teams.remove_member(actor=Membership.objects.get(pk=alice.pk), membership_id=alice.pk),
        lambda: teams.remove_member(actor=Membership.objects.get(pk=bob.pk), membership_id=bob.pk),
    )

    assert sorted(outcomes) == ["TeamRuleError", "ok"]
    assert Membership.objects.filter(team=team, role=Role.OWNER).count() == 1
