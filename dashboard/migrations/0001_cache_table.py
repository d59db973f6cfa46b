from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # allauth's rate limits need the database cache table; creating it here means
    # `migrate` alone prepares a fresh database. No-op for other cache backends.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = []
    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
