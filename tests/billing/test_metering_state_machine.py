"""A Hypothesis state machine over metering: reserve, release, retries, period rollover and plan changes.

A plain model of what should be counted runs beside the real services; after every step the
database must agree with the model and with itself (counter = events = rollups, never above the
allowance, money in integer cents).
"""

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from billing import lifecycle, metering, periods, services
from billing.models import ActiveVehicle, BillingPeriod, Plan, UsageDaily, UsageEvent
from tests.factories import ApplicationFactory, MembershipFactory, TeamFactory
from tests.vehicles.api_helpers import make_owner, make_vehicle

ENDPOINT = "/vehicles/{id}/odometer"


class PeriodModel:
    def __init__(self, allowance, vehicles, price):
        self.allowance, self.vehicle_allowance, self.price = allowance, vehicles, price
        self.used, self.cents, self.active = 0, 0, set()


class MeteringMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.team = TeamFactory()
        self.owner = MembershipFactory(team=self.team, role="owner")
        self.application = ApplicationFactory(team=self.team)
        driver = make_owner()
        self.vehicles = [make_vehicle(driver) for _ in range(8)]
        self.anchor = periods.anchor_of(self.team.created_at)
        self.now = self.team.created_at + timedelta(minutes=1)
        self.plan = Plan.objects.get(code="free")
        self.pending = None  # (plan, from) for a scheduled downgrade
        self.models: dict = {}
        self.counted_ids: set[str] = set()

    # --- the model ---

    def model(self) -> PeriodModel:
        start, _ = periods.period_bounds(self.anchor, self.now)
        if start not in self.models:
            if self.pending and start >= self.pending[1]:
                self.plan, self.pending = self.pending[0], None
            plan = self.plan
            self.models[start] = PeriodModel(
                plan.request_allowance, plan.vehicle_allowance, plan.price_per_request_cents
            )
        return self.models[start]

    # --- rules ---

    @rule(vehicle=st.integers(0, 7), key=st.sampled_from([None, None, "k1", "k2", "k3"]), fails=st.booleans())
    def request(self, vehicle, key, fails):
        model = self.model()
        request_id = f"idem:{self.team.pk}:{key}" if key else str(uuid.uuid4())  # examples share the database
        target = self.vehicles[vehicle]
        try:
            reservation = metering.reserve(
                request_id=request_id,
                team_id=self.team.pk,
                application_id=self.application.pk,
                vehicle_id=target.pk,
                endpoint=ENDPOINT,
                now=self.now,
            )
        except metering.LimitReached as limit:
            assert request_id not in self.counted_ids
            if model.used >= model.allowance:
                assert limit.code == "VEHICLE_REQUEST_LIMIT"
            else:
                assert limit.code == "VEHICLE_LIMIT"
                assert target.pk not in model.active and len(model.active) >= model.vehicle_allowance
            return
        if request_id in self.counted_ids:
            assert not reservation.counted  # a retry counts once, in any period
            return
        assert reservation.counted
        assert model.used < model.allowance
        if fails:
            metering.release(reservation)  # the vehicle call failed: nothing is counted
            return
        model.used += 1
        model.cents += model.price
        model.active.add(target.pk)
        self.counted_ids.add(request_id)

    @rule(days=st.integers(1, 45))
    def time_passes(self, days):
        self.now += timedelta(days=days)

    @precondition(lambda self: self.plan.code == "free")
    @rule()
    def upgrade(self):
        model = self.model()
        lifecycle.subscription_for(self.team.pk).__class__.objects.filter(team=self.team).update(card_on_file=True)
        with time_machine.travel(self.now, tick=False):
            services.switch_plan(actor=self.owner, plan_code="payg")
        self.plan, self.pending = Plan.objects.get(code="payg"), None
        model.allowance, model.vehicle_allowance, model.price = 2000, 20, 15

    @precondition(lambda self: self.plan.code == "payg" and self.pending is None)
    @rule()
    def schedule_downgrade(self):
        self.model()
        with time_machine.travel(self.now, tick=False):
            services.switch_plan(actor=self.owner, plan_code="free")
        _, end = periods.period_bounds(self.anchor, self.now)
        self.pending = (Plan.objects.get(code="free"), end)

    # --- invariants ---

    @invariant()
    def books_agree_with_the_model_and_each_other(self):
        for period in BillingPeriod.objects.filter(team=self.team):
            events = UsageEvent.objects.filter(period=period)
            daily = UsageDaily.objects.filter(period=period).aggregate(b=Sum("billable"), c=Sum("amount_cents"))
            assert period.requests_used == events.count() == (daily["b"] or 0)
            assert period.accrued_cents == (events.aggregate(c=Sum("unit_price_cents"))["c"] or 0) == (daily["c"] or 0)
            assert period.vehicles_active == ActiveVehicle.objects.filter(period=period).count()
            assert period.request_allowance is None or period.requests_used <= period.request_allowance
            assert period.vehicle_allowance is None or period.vehicles_active <= period.vehicle_allowance
            model = self.models.get(period.start)
            if model is not None:
                assert (period.requests_used, period.accrued_cents) == (model.used, model.cents)
                assert set(ActiveVehicle.objects.filter(period=period).values_list("vehicle_id", flat=True)) == (
                    model.active
                )


@pytest.mark.django_db
def test_metering_state_machine():
    MeteringMachine.TestCase.settings = settings(
        max_examples=25,
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    MeteringMachine.TestCase().runTest()
