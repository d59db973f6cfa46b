"""The Connect tester on an application's page, and the built-in callback page it lands on (connect/tester.py)."""

from django import forms
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.applications import can_edit_application
from accounts.decorators import team_member_required
from accounts.selectors import get_team_application
from vehicles import catalog
from vehicles.connect import tester
from vehicles.models import Mode
from vehicles.scopes import PERMISSIONS

MODES = [
    (Mode.TEST, "Test: any email and password, made-up vehicles (2-vehicles@example.com gives two)"),
    (Mode.SIMULATED, "Simulated: the same, for the Simulator's behaviour"),
    (Mode.LIVE, "Live: a simulated owner's login from the Vehicles tab"),
]


class ConnectTesterForm(forms.Form):
    redirect_uri = forms.ChoiceField(label="Redirect URI")
    scopes = forms.MultipleChoiceField(
        label="Permissions",
        choices=[(name, f"{name}: {text}") for name, text in PERMISSIONS.items()],
        widget=forms.CheckboxSelectMultiple,
        initial=["read_vehicle_info", "read_odometer"],
        error_messages={"required": "Choose at least one permission."},
    )
    mode = forms.ChoiceField(choices=MODES, initial=Mode.TEST, widget=forms.RadioSelect)
    make = forms.ChoiceField(label="Brand", required=False)
    single_select = forms.BooleanField(label="One vehicle only (single_select)", required=False)

    def __init__(self, data, *, redirect_uris: list[str]):
        super().__init__(data)
        self.fields["redirect_uri"].choices = [(uri, uri) for uri in redirect_uris]
        self.fields["make"].choices = [("", "The driver chooses")] + [
            (make, catalog.display_name(make)) for make in catalog.make_names()
        ]


@team_member_required()
def connect_tester(request, client_id):
    application = get_team_application(request.team, client_id)
    callback = tester.callback_uri()
    redirect_uris = list(application.redirect_uris.order_by("-is_default", "created_at").values_list("uri", flat=True))
    if callback in redirect_uris:  # the built-in callback first: it is what the tester is for
        redirect_uris.remove(callback)
        redirect_uris.insert(0, callback)
    submitted = "scopes" in request.GET or "redirect_uri" in request.GET
    form = ConnectTesterForm(request.GET if submitted else None, redirect_uris=redirect_uris)
    url = None
    if submitted and form.is_valid():
        data = form.cleaned_data
        url = tester.connect_url(
            application,
            redirect_uri=data["redirect_uri"],
            scopes=data["scopes"],
            mode=data["mode"],
            make=data["make"],
            single_select=data["single_select"],
        )
    context = {
        "application": application,
        "form": form,
        "connect_url": url,
        "callback_uri": callback,
        "callback_registered": callback in redirect_uris,
        "can_edit": can_edit_application(request.membership, application),
    }
    return render(request, "vehicles/connect/tester.html", context, status=400 if submitted and not url else 200)


@never_cache
@require_GET
def test_callback(request):
    """Where the tester's Connect comes back: the code (or error) in the query, shown with the exchange to run."""
    code = request.GET.get("code", "")
    status = tester.code_status(code) if code else None
    context = {
        "code": code,
        "state": request.GET.get("state", ""),
        "error": request.GET.get("error", ""),
        "error_description": request.GET.get("error_description", ""),
        "status": status,
        "callback_uri": tester.callback_uri(),
        "token_url": request.build_absolute_uri("/oauth/token"),
    }
    return render(request, "vehicles/connect/callback.html", context, status=200 if code or context["error"] else 400)
