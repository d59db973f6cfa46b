"""A period's terms: the plan's, overridden by the team's active grant or Enterprise contract (DESIGN §1).

One function decides them for every place that sets a period's terms: opening a period, switching
plans, starting or ending a grant, and starting or ending a contract.
"""

from datetime import datetime

from billing.models import Contract, Grant, Plan


def active_grant(team_id: int, moment: datetime) -> Grant | None:
    return active_grants({team_id: moment}).get(team_id)


def active_grants(moments: dict[int, datetime]) -> dict[int, Grant]:
    """active_grant for many teams at once: team id → its grant active at its moment (one query)."""
    found = {}
    grants = Grant.objects.filter(team_id__in=moments, status=Grant.Status.ACTIVE).order_by("pk")
    for grant in grants:
        moment = moments[grant.team_id]
        if grant.starts_at <= moment < grant.ends_at and grant.team_id not in found:
            found[grant.team_id] = grant
    return found


def active_contract(team_id: int) -> Contract | None:
    """The contract in force: started and not ended (billing.contracts switches it at its dates)."""
    return Contract.objects.filter(team_id=team_id, status=Contract.Status.ACTIVE).first()


def terms_for(plan: Plan, grant: Grant | None, contract: Contract | None = None) -> dict:
    """The allowances, the price of a billable request and the contract under this plan, grant or contract.

    A contract sets its own allowances (empty meaning unlimited); its requests are counted at 0 here
    and priced by its tiers when the period closes. A grant makes requests free and never lowers an
    allowance: each is the larger of the plan's and the grant's, so a paying team accepted into a
    program is never cut off. A team never has both (billing.contracts and billing.grants refuse it).
    """
    if contract is not None:
        return {
            "request_allowance": contract.request_allowance,
            "vehicle_allowance": contract.vehicle_allowance,
            "unit_price_cents": 0,
            "contract": contract,
        }
    if grant is not None:
        return {
            "request_allowance": _larger(plan.request_allowance, grant.request_allowance),
            "vehicle_allowance": _larger(plan.vehicle_allowance, grant.vehicle_allowance),
            "unit_price_cents": 0,
            "contract": None,
        }
    return {
        "request_allowance": plan.request_allowance,
        "vehicle_allowance": plan.vehicle_allowance,
        "unit_price_cents": plan.price_per_request_cents,
        "contract": None,
    }


def _larger(plan_allowance: int | None, grant_allowance: int) -> int | None:
    return None if plan_allowance is None else max(plan_allowance, grant_allowance)
