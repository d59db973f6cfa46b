from django.shortcuts import render

from accounts.decorators import team_member_required


@team_member_required()
def vehicle_list(request):
    return render(request, "vehicles/vehicle_list.html")
