from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.decorators import team_member_required
from accounts.roles import Perm
from vehicles import catalog, fleet, selectors, simulator
from vehicles.connections import disconnect_from_dashboard
from vehicles.forms import SimulatedVehicleForm

CONNECTION_PAGE_SIZE = 25


def _simulator_form(request, data=None):
    owners = selectors.team_simulated_owners(request.team)
    return SimulatedVehicleForm(
        data,
        make_choices=[(make, catalog.display_name(make)) for make in catalog.make_names()],
        owner_choices=[(str(o.pk), f"{o.email} ({catalog.display_name(o.make)})") for o in owners],
    )


@team_member_required()
def vehicle_list(request, form=None, new_login=None, status=200):
    page = Paginator(selectors.team_connections(request.team), CONNECTION_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "connections": page.object_list,
        "owners": selectors.team_simulated_owners(request.team),
        "form": form or _simulator_form(request),
        "new_login": new_login,
    }
    response = render(request, "vehicles/vehicle_list.html", context, status=status)
    if new_login:
        response["Cache-Control"] = "no-store"
    return response


@require_POST
@team_member_required(Perm.EDIT_ASSIGNED_APPLICATIONS)
def disconnect(request, connection_id):
    connection = selectors.get_team_connection(request.team, connection_id)
    if disconnect_from_dashboard(actor=request.membership, connection=connection):
        messages.success(
            request, f"Disconnected the {catalog.display_name(connection.vehicle.make)} from {connection.application}."
        )
    return redirect("vehicle_list")


@require_POST
@team_member_required(Perm.EDIT_ASSIGNED_APPLICATIONS)
def simulated_vehicle_create(request):
    form = _simulator_form(request, request.POST)
    if not form.is_valid():
        return vehicle_list(request, form=form, status=400)
    data = form.cleaned_data
    try:
        vehicle, new_login = fleet.add_simulated_vehicle(
            actor=request.membership,
            make=data["make"],
            model=data["model"] or None,
            year=data["year"],
            vin=data["vin"] or None,
            owner_id=int(data["owner"]) if data["owner"] else None,
        )
    except simulator.SimulatorError as error:
        form.add_error(None, str(error))
        return vehicle_list(request, form=form, status=400)
    messages.success(
        request, f"Created a simulated {vehicle.year} {catalog.display_name(vehicle.make)} {vehicle.model}."
    )
    if new_login:
        return vehicle_list(request, new_login=new_login)
    return redirect("vehicle_list")
