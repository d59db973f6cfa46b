"""A period's terms: the plan's, overridden by the team's active grant (DESIGN §1).

One function decides them for every place that sets a period's terms: opening a period, switching
plans, and starting or ending a grant.
"""

from datetime import datetime

from billing.models import Grant, Plan


def active_grant(team_id: int, moment: datetime) -> Grant | None:
    return Grant.objects.filter(
        team_id=team_id, status=Grant.Status.ACTIVE, starts_at__lte=moment, ends_at__gt=moment
    ).first()


def terms_for(plan: Plan, grant: Grant | None) -> dict:
    """The allowances and the price of a billable request under this plan and grant.

    A grant makes requests free and never lowers an allowance: each is the larger of the plan's and
    the grant's (empty meaning unlimited), so a paying team accepted into a program is never cut off.
    """
    if grant is not None:
        return {
            "request_allowance": _larger(plan.request_allowance, grant.request_allowance),
            "vehicle_allowance": _larger(plan.vehicle_allowance, grant.vehicle_allowance),
            "unit_price_cents": 0,
        }
    return {
        "request_allowance": plan.request_allowance,
        "vehicle_allowance": plan.vehicle_allowance,
        "unit_price_cents": plan.price_per_request_cents,
    }


def _larger(plan_allowance: int | None, grant_allowance: int) -> int | None:
    return None if plan_allowance is None else max(plan_allowance, grant_allowance)
