"""Two indexes fewer on UsageEvent, the table every billable request inserts into (docs/performance.md).

The period's own index is dropped: (period, vehicle) serves every lookup by period. The request id's uniqueness
moves from `unique=True` to a named constraint, which on PostgreSQL drops the `varchar_pattern_ops` index Django
adds beside a unique CharField for LIKE queries nothing makes. The new unique index is built before the old one is
dropped, in the migration's transaction: on a large table this holds the table's lock while it builds (run it when
the API is quiet, or build the index CONCURRENTLY by hand first under the same name).
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_personal_access_tokens"),
        ("billing", "0025_reserve_in_one_round_trip"),
        ("vehicles", "0005_grant_revocation_and_test_mode_scope"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="usageevent",
            constraint=models.UniqueConstraint(fields=("request_id",), name="usage_event_unique_request_id"),
        ),
        migrations.AlterField(
            model_name="usageevent",
            name="request_id",
            field=models.CharField(max_length=100),
        ),
        # Only the index goes: AlterField would also drop and re-add the foreign key, checking every row again.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="usageevent",
                    name="period",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="usage_events",
                        to="billing.billingperiod",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "billing_usageevent_period_id_963f650a"',
                    reverse_sql='CREATE INDEX "billing_usageevent_period_id_963f650a" '
                    'ON "billing_usageevent" ("period_id")',
                ),
            ],
        ),
    ]
