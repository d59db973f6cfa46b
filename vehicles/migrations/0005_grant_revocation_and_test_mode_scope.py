"""A code exchanged twice revokes its grant; Connect's test-mode owners belong to one application and are purged.

Test-mode owners used to be shared by every application that signed in with the same email. Each existing
one now belongs to the first application that connected it; the other applications' connections to its
vehicles are revoked (signing in at Connect in test mode again gives them vehicles of their own). Owners no
application connected stay unassigned: nobody can sign in as them any more, and the purge removes them.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone


def scope_test_owners_to_an_application(apps, schema_editor):
    SimulatedOwner = apps.get_model("vehicles", "SimulatedOwner")
    Grant = apps.get_model("vehicles", "Grant")
    Connection = apps.get_model("vehicles", "Connection")
    now = timezone.now()
    shared = SimulatedOwner.objects.filter(mode="test", application__isnull=True)
    for owner_id in shared.values_list("pk", flat=True).iterator():
        grants = Grant.objects.filter(owner_id=owner_id).order_by("created_at", "pk")
        first = grants.values_list("application_id", flat=True).first()
        if first is None:
            continue
        SimulatedOwner.objects.filter(pk=owner_id).update(application_id=first)
        others = Connection.objects.filter(grant__owner_id=owner_id, revoked_at__isnull=True).exclude(
            application_id=first
        )
        others.update(revoked_at=now)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_personal_access_tokens"),
        ("vehicles", "0004_beat_purge_idempotency_keys"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="simulatedowner",
            name="owner_unique_per_brand_mode",
        ),
        migrations.AddField(
            model_name="authorizationcode",
            name="grant",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="vehicles.grant",
            ),
        ),
        migrations.AddField(
            model_name="grant",
            name="revoked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="simulatedowner",
            name="application",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.application",
            ),
        ),
        migrations.AddField(
            model_name="simulatedowner",
            name="last_signed_in_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="simulatedowner",
            constraint=models.UniqueConstraint(
                condition=models.Q(("mode", "test"), _negated=True),
                fields=("make", "email", "mode"),
                name="owner_unique_per_brand_mode",
            ),
        ),
        migrations.AddConstraint(
            model_name="simulatedowner",
            constraint=models.UniqueConstraint(
                condition=models.Q(("mode", "test")),
                fields=("application", "make", "email"),
                name="test_owner_unique_per_application",
            ),
        ),
        migrations.RunPython(scope_test_owners_to_an_application, migrations.RunPython.noop),
    ]
