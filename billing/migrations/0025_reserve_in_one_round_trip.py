"""The metered API's reservation as one PostgreSQL function call: billing.metering._reserve_in_one_round_trip.

The function does what metering._reserve_in_period does, in one round trip, and only on the common path: it
declines (returns no row, having changed nothing) whenever the full path has more to do (no open period, a
suspension, a limit, an alert threshold), and the caller then takes that path. If a column or table it names
changes, a migration must CREATE OR REPLACE it. On SQLite there is no function: the full path always runs.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION ignition_reserve(
    p_team_id bigint,
    p_now timestamptz,
    p_day date,
    p_request_id varchar,
    p_application_id bigint,
    p_vehicle_id bigint,
    p_endpoint varchar,
    p_alert_percent integer
) RETURNS TABLE (
    counted_period bigint, counted_event bigint, counted_price integer, counted_contract bigint, activated boolean
)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    period billing_billingperiod%ROWTYPE;
    activating boolean;
    new_event bigint;
BEGIN
    -- The period row's lock first, as every reservation and release takes it: reservations never deadlock.
    SELECT * INTO period FROM billing_billingperiod p
     WHERE p.team_id = p_team_id AND p.start <= p_now AND p."end" > p_now
       FOR UPDATE;
    IF NOT FOUND OR period.status <> 'open' THEN
        RETURN;  -- no period yet, or closed early: the full path opens or refuses
    END IF;
    IF EXISTS (SELECT 1 FROM billing_subscription s WHERE s.team_id = p_team_id AND s.status = 'suspended') THEN
        RETURN;
    END IF;
    IF period.request_allowance IS NOT NULL AND (
        period.requests_used + 1 >= period.request_allowance  -- the last request allowed, or none: alert or refuse
        OR period.requests_used + 1 = GREATEST(1, (period.request_allowance * p_alert_percent + 99) / 100)
    ) THEN
        RETURN;
    END IF;
    -- A statement of a VOLATILE function sees what committed before it began: with the lock held, this is exact.
    activating := NOT EXISTS (
        SELECT 1 FROM billing_activevehicle av WHERE av.period_id = period.id AND av.vehicle_id = p_vehicle_id
    );
    IF activating AND period.vehicle_allowance IS NOT NULL
       AND period.vehicles_active + 1 >= period.vehicle_allowance THEN
        RETURN;  -- the last vehicle allowed (an alert), or none
    END IF;
    UPDATE billing_billingperiod
       SET requests_used = requests_used + 1,
           accrued_cents = accrued_cents + period.unit_price_cents,
           vehicles_active = vehicles_active + activating::integer
     WHERE id = period.id;
    IF activating THEN
        INSERT INTO billing_activevehicle (period_id, vehicle_id, first_request_at)
        VALUES (period.id, p_vehicle_id, p_now);
    END IF;
    -- A retried request id raises unique_violation, which undoes the whole call; the caller reads it as a retry.
    INSERT INTO billing_usageevent (request_id, period_id, application_id, vehicle_id, endpoint, unit_price_cents, occurred_at)
    VALUES (p_request_id, period.id, p_application_id, p_vehicle_id, p_endpoint, period.unit_price_cents, p_now)
    RETURNING id INTO new_event;
    INSERT INTO billing_usagedaily AS d (period_id, day, application_key, vehicle_key, endpoint, unit_price_cents,
                                         contract_key, billable, non_billable, amount_cents)
    VALUES (period.id, p_day, COALESCE(p_application_id, 0), p_vehicle_id, p_endpoint, period.unit_price_cents,
            COALESCE(period.contract_id, 0), 1, 0, period.unit_price_cents)
    ON CONFLICT (period_id, day, application_key, vehicle_key, endpoint, unit_price_cents, contract_key)
    DO UPDATE SET billable = d.billable + 1, amount_cents = d.amount_cents + EXCLUDED.amount_cents;
    RETURN QUERY SELECT period.id::bigint, new_event::bigint, period.unit_price_cents::integer,
                        COALESCE(period.contract_id, 0)::bigint, activating;
END;
$$;
"""

DROP = "DROP FUNCTION IF EXISTS ignition_reserve(bigint, timestamptz, date, varchar, bigint, bigint, varchar, integer);"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)  # no placeholders: %ROWTYPE is SQL


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0024_card_detach_refunds_disputes")]

    operations = [migrations.RunPython(create, drop)]
