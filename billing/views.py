from django.shortcuts import render

from accounts.decorators import team_member_required
from accounts.roles import Perm


@team_member_required(Perm.MANAGE_BILLING)
def billing_overview(request):
    return render(request, "billing/billing.html")


@team_member_required()
def garage(request):
    return render(request, "billing/garage.html")
