"""Seed the public price list (DESIGN §1). Staff edit the rows in the admin afterwards."""

from django.db import migrations

PLANS = [
    {
        "code": "free",
        "name": "Free",
        "description": "100 API requests and 5 connected vehicles a month. Email support.",
        "price_per_request_cents": 0,
        "request_allowance": 100,
        "vehicle_allowance": 5,
        "requires_card": False,
        "self_serve": True,
        "support_channels": ["email"],
        "sort_order": 10,
    },
    {
        "code": "payg",
        "name": "Pay-as-you-go",
        "description": "$0.15 per API request; 2,000 requests and 20 connected vehicles a month. Chat and email support.",
        "price_per_request_cents": 15,
        "request_allowance": 2000,
        "vehicle_allowance": 20,
        "requires_card": True,
        "self_serve": True,
        "support_channels": ["chat", "email"],
        "sort_order": 20,
    },
    {
        "code": "enterprise",
        "name": "Enterprise",
        "description": "Volume discounts and tailored pricing, high request and vehicle volumes. Phone, chat and email.",
        "price_per_request_cents": 0,
        "request_allowance": None,
        "vehicle_allowance": None,
        "requires_card": False,
        "self_serve": False,
        "support_channels": ["phone", "chat", "email"],
        "sort_order": 30,
    },
]


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for row in PLANS:
        Plan.objects.update_or_create(code=row["code"], defaults=row)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
