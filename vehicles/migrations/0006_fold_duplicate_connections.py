"""One live connection per vehicle and application, as Smartcar keeps (Connect run again now moves it:
vehicles/tokens.py `_connect`).

Before this, running Connect again for a vehicle already connected to the application added a second live row. This
folds each such set into its newest row (the grant whose tokens and permissions are current), which takes the set's
first connection time and last request; the older rows are revoked (their grants' tokens no longer reach the
vehicle, as after a new Connect now).
"""

from django.db import migrations
from django.db.models import Count, Max, Min
from django.utils import timezone


def fold_duplicates(apps, schema_editor):
    Connection = apps.get_model("vehicles", "Connection")
    live = Connection.objects.filter(revoked_at__isnull=True)
    duplicated = (
        live.values("application_id", "vehicle_id")
        .annotate(n=Count("id"), first=Min("connected_at"), last=Max("last_request_at"))
        .filter(n__gt=1)
    )
    now = timezone.now()
    for group in duplicated:
        rows = live.filter(application_id=group["application_id"], vehicle_id=group["vehicle_id"])
        keep = rows.order_by("-connected_at", "-id").first()
        rows.exclude(pk=keep.pk).update(revoked_at=now)
        Connection.objects.filter(pk=keep.pk).update(connected_at=group["first"], last_request_at=group["last"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_personal_access_tokens"),
        ("vehicles", "0005_grant_revocation_and_test_mode_scope"),
    ]

    operations = [migrations.RunPython(fold_duplicates, migrations.RunPython.noop)]
