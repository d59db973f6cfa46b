"""The OpenAPI 3 schema of the v2.0 API, served at GET /v2.0/openapi.json, and its docs page at GET /docs/api/.

drf-spectacular only reads DRF views, and the API's views are plain Django views (kept that way: they
are the hot path). So every route has a documentation-only DRF view here, never routed and never run,
whose methods carry the operation (`extend_schema`), and `documented_patterns()` lists them under the
real wire paths (no trailing slash). schema.VehicleApiSchemaGenerator generates from those patterns; it
is also SPECTACULAR_SETTINGS' DEFAULT_GENERATOR_CLASS, so `manage.py spectacular` writes this schema.
tests/vehicles/test_openapi_schema.py checks that every documented path resolves to the real view and
that every real route is documented; tests/vehicles/test_openapi_schemathesis.py fuzzes the API with it.
"""

from django.urls import path
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiJsonRenderer2
from drf_spectacular.utils import OpenApiExample, extend_schema
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from vehicles.api import schema
from vehicles.api.resources import ACTIONS, READS

SCHEMA_URL_NAME = "vehicle-api-openapi"
DOCS_URL_NAME = "vehicle-api-docs"

VEHICLES, DATA, COMMANDS, MANAGEMENT = (tag["name"] for tag in schema.TAGS)


class BearerAccessToken(BaseAuthentication):
    """Documentation only: `Authorization: Bearer <access token>` (vehicles/api/auth.py checks it)."""


class ManagementBasic(BaseAuthentication):
    """Documentation only: `Authorization: Basic base64("default:" + management token)`."""


class BearerAccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerAccessToken
    name = "accessToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An access token from POST /oauth/token (Smartcar Connect's code exchange or a refresh).",
        }


class ManagementBasicScheme(OpenApiAuthenticationExtension):
    target_class = ManagementBasic
    name = "managementToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "basic",
            "description": 'User name "default", password the application management token (dashboard → '
            "application → Management token).",
        }


class DocumentationView(APIView):
    """Never routed: drf-spectacular reads the class attributes and the methods' `extend_schema`."""

    authentication_classes = [BearerAccessToken]
    permission_classes = [IsAuthenticated]  # the token is required, not optional
    renderer_classes = [JSONRenderer]  # application/json, like every answer of the real views
    parser_classes = [JSONParser]


class ManagementDocumentationView(DocumentationView):
    authentication_classes = [ManagementBasic]


def operation(*, parameters=(), responses, **kwargs):
    """A documented method: extend_schema, plus the headers every answer can carry."""
    decorator = extend_schema(
        parameters=[*parameters, schema.REQUEST_ID_HEADER, schema.RETRY_AFTER_HEADER], responses=responses, **kwargs
    )

    def method(self, request, *args, **kwargs):
        raise NotImplementedError("documentation only: the real route is in vehicles/api/urls.py")

    return decorator(method)


def documentation_view(name: str, base: type[APIView] = DocumentationView, **methods) -> type[APIView]:
    return type(name, (base,), methods)


# Errors any vehicle route can answer; data and commands reach the vehicle, which adds its own. A body (or
# one an Idempotency-Key's fingerprint reads) beyond DATA_UPLOAD_MAX_MEMORY_SIZE answers 413.
VEHICLE_ROUTE_ERRORS = (400, 401, 403, 404, 429, 500)
VEHICLE_ERRORS = (*VEHICLE_ROUTE_ERRORS, 409, 413, 430, 501, 502)

# path below /vehicles/{id}/ -> (operationId, summary), for the GETs in resources.READS and POSTs in ACTIONS.
READ_OPERATIONS = {
    "": ("getVehicleAttributes", "Make, model and year"),
    "vin": ("getVin", "VIN"),
    "odometer": ("getOdometer", "Odometer"),
    "location": ("getLocation", "Location"),
    "security": ("getLockStatus", "Lock status of doors, windows, sunroof, storage and charging port"),
    "fuel": ("getFuelTank", "Fuel tank"),
    "battery": ("getBatteryLevel", "Battery level and range"),
    "battery/capacity": ("getBatteryCapacity", "Battery capacity"),
    "charge": ("getChargingStatus", "Charging status"),
    "charge/limit": ("getChargeLimit", "Charge limit"),
    "tires/pressure": ("getTirePressure", "Tire pressure"),
    "engine/oil": ("getEngineOilLife", "Engine oil life"),
}
ACTION_OPERATIONS = {
    "security": ("lockUnlock", "Lock or unlock"),
    "charge": ("startStopCharge", "Start or stop charging (the vehicle must be plugged in)"),
    "charge/limit": ("setChargeLimit", "Set the charge limit"),
    "navigation/destination": ("sendDestination", "Send a destination to the navigation system"),
}


def _read_method(path: str):
    read = READS[path]
    operation_id, summary = READ_OPERATIONS[path]
    headers = [*schema.DATA_HEADERS, *([schema.UNIT_SYSTEM_HEADER] if read.units else [])]
    return operation(
        operation_id=operation_id,
        summary=summary,
        description=f"Permission: `{read.scope}`. Billable.",
        tags=[DATA],
        parameters=[schema.VEHICLE_ID, schema.UNIT_SYSTEM, schema.IDEMPOTENCY_KEY, *headers],
        responses={200: schema.READ_BODIES[path], **schema.error_responses(*VEHICLE_ERRORS)},
    )


def _action_method(path: str):
    operation_id, summary = ACTION_OPERATIONS[path]
    request, examples = schema.ACTION_REQUESTS[path]
    return operation(
        operation_id=operation_id,
        summary=summary,
        description=f"Permission: `{ACTIONS[path].scope}`. Billable.",
        tags=[COMMANDS],
        parameters=[schema.VEHICLE_ID, schema.IDEMPOTENCY_KEY],
        request=request,
        examples=examples,
        responses={200: schema.ActionResultSerializer, **schema.error_responses(*VEHICLE_ERRORS)},
    )


def _resource_view(path: str) -> type[APIView]:
    methods = {}
    if path in READS:
        methods["get"] = _read_method(path)
    if path in ACTIONS:
        methods["post"] = _action_method(path)
    name = "".join(part.title() for part in path.replace("/", "_").split("_")) or "Attributes"
    return documentation_view(f"{name}Documentation", **methods)


RESOURCE_VIEWS = {path: _resource_view(path) for path in sorted({*READS, *ACTIONS})}


VehicleListDocumentation = documentation_view(
    "VehicleListDocumentation",
    get=operation(
        operation_id="listVehicles",
        summary="The vehicles this token reaches",
        description="Ids of the vehicles connected through this token's grant, oldest connection first. Free.",
        tags=[VEHICLES],
        parameters=schema.VEHICLES_PAGING,
        responses={200: schema.VehicleListSerializer, **schema.error_responses(400, 401, 429, 500)},
    ),
)
UserDocumentation = documentation_view(
    "UserDocumentation",
    get=operation(
        operation_id="getUser",
        summary="The vehicle owner",
        description="The id of the vehicle owner who granted this token. Free.",
        tags=[VEHICLES],
        responses={200: schema.UserSerializer, **schema.error_responses(401, 429, 500)},
    ),
)
PermissionsDocumentation = documentation_view(
    "PermissionsDocumentation",
    get=operation(
        operation_id="getPermissions",
        summary="Permissions granted for the vehicle",
        description="The permissions of this token's grant, without `required:` prefixes. Free.",
        tags=[VEHICLES],
        parameters=[schema.VEHICLE_ID, *schema.PERMISSIONS_PAGING],
        responses={200: schema.PermissionsSerializer, **schema.error_responses(*VEHICLE_ROUTE_ERRORS)},
    ),
)
DisconnectDocumentation = documentation_view(
    "DisconnectDocumentation",
    delete=operation(
        operation_id="disconnect",
        summary="Disconnect the vehicle from this application",
        description="Revokes this application's access to the vehicle (every grant of this owner); the token no "
        "longer reaches it. Free.",
        tags=[VEHICLES],
        parameters=[schema.VEHICLE_ID],
        responses={200: schema.DisconnectSerializer, **schema.error_responses(*VEHICLE_ROUTE_ERRORS)},
    ),
)
BatchDocumentation = documentation_view(
    "BatchDocumentation",
    post=operation(
        operation_id="batch",
        summary="Several data reads in one request",
        description="GET vehicle data paths only. Each sub-request is checked for its permission and billed on its "
        "own, and fails on its own: its `code` and `body` are what the direct request would have answered.",
        tags=[DATA],
        parameters=[schema.VEHICLE_ID, schema.UNIT_SYSTEM, schema.IDEMPOTENCY_KEY],
        request=schema.BatchRequestSerializer,
        examples=[
            OpenApiExample(
                "Odometer and location", {"requests": [{"path": "/odometer"}, {"path": "/location"}]}, request_only=True
            )
        ],
        responses={200: schema.BatchResponseSerializer, **schema.error_responses(*VEHICLE_ROUTE_ERRORS, 413)},
    ),
)
ConnectionsDocumentation = documentation_view(
    "ConnectionsDocumentation",
    base=ManagementDocumentationView,
    get=operation(
        operation_id="getConnections",
        summary="The application's vehicle connections",
        description="One entry per (user, vehicle), newest first, paged with an opaque cursor.",
        tags=[MANAGEMENT],
        parameters=[*schema.CONNECTIONS_PAGING, *schema.connection_filters("Only")],
        responses={200: schema.ConnectionListSerializer, **schema.error_responses(400, 401, 500)},
    ),
    delete=operation(
        operation_id="deleteConnections",
        summary="Disconnect a vehicle or a user",
        description="Pass exactly one of `vehicle_id` and `user_id` (400 otherwise).",
        tags=[MANAGEMENT],
        parameters=schema.connection_filters("Disconnect"),
        responses={200: schema.DeletedConnectionsSerializer, **schema.error_responses(400, 401, 500)},
    ),
)


def documented_patterns() -> list:
    """The routes of vehicles/api/urls.py as drf-spectacular should show them: /v2.0/..., no trailing slash."""
    vehicle = "v2.0/vehicles/<vehicle_id>"
    return [
        path("v2.0/vehicles", VehicleListDocumentation.as_view()),
        path("v2.0/user", UserDocumentation.as_view()),
        *(path(f"{vehicle}/{resource}".rstrip("/"), view.as_view()) for resource, view in RESOURCE_VIEWS.items()),
        path(f"{vehicle}/permissions", PermissionsDocumentation.as_view()),
        path(f"{vehicle}/application", DisconnectDocumentation.as_view()),
        path(f"{vehicle}/batch", BatchDocumentation.as_view()),
        path("v2.0/management/connections", ConnectionsDocumentation.as_view()),
    ]


schema_view = SpectacularJSONAPIView.as_view(
    generator_class=schema.VehicleApiSchemaGenerator,
    authentication_classes=[],  # public, and no session means no CSRF or cookie handling
    permission_classes=[AllowAny],
    renderer_classes=[OpenApiJsonRenderer2, OpenApiJsonRenderer],  # plain application/json unless asked otherwise
)

# Swagger UI from drf-spectacular-sidecar's static files: no CDN, works offline. The split view serves its init
# script as a file (?script) and our template its styles, so the page needs nothing inline (Content-Security-Policy).
docs_view = SpectacularSwaggerSplitView.as_view(
    url_name=SCHEMA_URL_NAME,
    authentication_classes=[],
    permission_classes=[AllowAny],
    template_name="vehicles/api_docs.html",
)
