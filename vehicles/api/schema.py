"""The v2.0 API's wire format as DRF serializers, parameters and responses, for the OpenAPI schema only.

The API views are plain Django views (vehicles/api/views.py) that build their JSON by hand; nothing
here runs on a request. vehicles/api/openapi.py puts these pieces together per route. Bodies whose
key set Smartcar's SDKs rely on exactly subclass `ExactBody`: the schema forbids extra keys in them,
so Schemathesis notices a key the code adds or drops.
"""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers

from vehicles.api.management import DEFAULT_LIMIT as CONNECTIONS_DEFAULT_LIMIT
from vehicles.api.management import MAX_LIMIT as CONNECTIONS_MAX_LIMIT
from vehicles.api.resources import TIRES
from vehicles.api.units import IMPERIAL, METRIC
from vehicles.api.views import MAX_BATCH_REQUESTS, PERMISSIONS_DEFAULT_LIMIT, VEHICLES_DEFAULT_LIMIT, VEHICLES_MAX_LIMIT
from vehicles.errors import ERRORS, error_body
from vehicles.scopes import PERMISSIONS

# In the order the docs page lists them.
TAGS = [
    {"name": "Vehicles", "description": "The vehicles a token reaches, their owner, permissions, disconnecting."},
    {"name": "Vehicle data", "description": "Reads from the vehicle; `sc-unit-system: imperial` converts units."},
    {"name": "Vehicle commands", "description": "Commands sent to the vehicle."},
    {"name": "Management", "description": "The application's connections, with the management token."},
]
EXAMPLE_REQUEST_ID = "5dea93a1-3f79-4246-90c5-89610a20471b"


# A response body with exactly these keys: the schema says `additionalProperties: false`. (A comment, not a
# docstring: drf-spectacular would show a docstring as every subclass's description.)
class ExactBody(serializers.Serializer):
    pass


def exact_component_names() -> set[str]:
    """The schema component names of every ExactBody (drf-spectacular drops the `Serializer` suffix)."""
    pending, names = list(ExactBody.__subclasses__()), set()
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        names.add(cls.__name__.removesuffix("Serializer"))
    return names


def fraction(help_text: str, **kwargs) -> serializers.FloatField:
    return serializers.FloatField(min_value=0, max_value=1, help_text=help_text, **kwargs)


# --- vehicle data -----------------------------------------------------------------------------------------------------


class AttributesSerializer(ExactBody):
    id = serializers.UUIDField(help_text="The vehicle id.")
    make = serializers.CharField(help_text="Upper case, e.g. TESLA.")
    model = serializers.CharField()
    year = serializers.IntegerField()


class VinSerializer(ExactBody):
    vin = serializers.CharField(help_text="The 17-character vehicle identification number.")


class OdometerSerializer(ExactBody):
    distance = serializers.FloatField(min_value=0, help_text="Kilometres, or miles with `sc-unit-system: imperial`.")


class LocationSerializer(ExactBody):
    latitude = serializers.FloatField(min_value=-90, max_value=90)
    longitude = serializers.FloatField(min_value=-180, max_value=180)


CLOSURE_STATUSES = ("OPEN", "CLOSED", "UNKNOWN")
SUCCESS = ("success",)  # the `status` of a command or a disconnect


class ClosureSerializer(ExactBody):
    status = serializers.ChoiceField(choices=CLOSURE_STATUSES)


class DoorOrWindowSerializer(ClosureSerializer):
    type = serializers.ChoiceField(choices=TIRES)  # the four corners, named as the tires are


class SunroofSerializer(ClosureSerializer):
    type = serializers.ChoiceField(choices=["sunroof"])


class StorageSerializer(ClosureSerializer):
    type = serializers.ChoiceField(choices=["front", "rear"], help_text="front: hood or frunk; rear: trunk.")


class ChargingPortSerializer(ClosureSerializer):
    type = serializers.ChoiceField(choices=["chargingPort"])


class LockStatusSerializer(ExactBody):
    """All six keys are always there (the Python SDK indexes each); a list is empty where the vehicle has none."""

    isLocked = serializers.BooleanField()
    doors = DoorOrWindowSerializer(many=True)
    windows = DoorOrWindowSerializer(many=True)
    sunroof = SunroofSerializer(many=True)
    storage = StorageSerializer(many=True)
    chargingPort = ChargingPortSerializer(many=True)


class FuelSerializer(ExactBody):
    amountRemaining = serializers.FloatField(min_value=0, help_text="Litres, or US gallons in imperial.")
    percentRemaining = fraction("Fraction of a full tank, 0 to 1.")
    range = serializers.FloatField(min_value=0, help_text="Kilometres, or miles in imperial.")


class BatterySerializer(ExactBody):
    percentRemaining = fraction("State of charge, 0 to 1.")
    range = serializers.FloatField(min_value=0, help_text="Kilometres, or miles in imperial.")


class BatteryCapacitySerializer(ExactBody):
    capacity = serializers.FloatField(min_value=0, help_text="Usable capacity in kWh.")


class ChargeStatusSerializer(ExactBody):
    isPluggedIn = serializers.BooleanField()
    state = serializers.ChoiceField(choices=["CHARGING", "FULLY_CHARGED", "NOT_CHARGING"])


class ChargeLimitSerializer(ExactBody):
    limit = fraction("The charge limit as a fraction of a full battery.")


class TirePressureSerializer(ExactBody):
    frontLeft = serializers.FloatField(min_value=0, help_text="kPa, or psi in imperial.")
    frontRight = serializers.FloatField(min_value=0)
    backLeft = serializers.FloatField(min_value=0)
    backRight = serializers.FloatField(min_value=0)


class EngineOilSerializer(ExactBody):
    lifeRemaining = fraction("Remaining oil life, 0 to 1.")


# GET /vehicles/{id}/<path> -> its body; every path in resources.READS must be here (openapi.py checks).
READ_BODIES: dict[str, type[serializers.Serializer]] = {
    "": AttributesSerializer,
    "vin": VinSerializer,
    "odometer": OdometerSerializer,
    "location": LocationSerializer,
    "security": LockStatusSerializer,
    "fuel": FuelSerializer,
    "battery": BatterySerializer,
    "battery/capacity": BatteryCapacitySerializer,
    "charge": ChargeStatusSerializer,
    "charge/limit": ChargeLimitSerializer,
    "tires/pressure": TirePressureSerializer,
    "engine/oil": EngineOilSerializer,
}


# --- commands ---------------------------------------------------------------------------------------------------------


class ActionResultSerializer(serializers.Serializer):
    """What every command answers; a provider may add keys of its own, so this one is open."""

    status = serializers.ChoiceField(choices=SUCCESS)
    message = serializers.CharField(help_text='e.g. "Successfully sent request to vehicle".')


class SecurityActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["LOCK", "UNLOCK"])


class ChargeActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["START", "STOP"])


# The Node SDK sends numbers as strings ({"limit": "0.8"}), so the API takes both.
NUMERIC_STRING = r"^-?(\d+\.?\d*|\.\d+)$"


@extend_schema_field(
    {
        "oneOf": [
            {"type": "number", "minimum": 0.5, "maximum": 1},
            {"type": "string", "pattern": NUMERIC_STRING, "description": "A number in a string, as Node sends it."},
        ],
        "example": 0.8,
    }
)
class ChargeLimitValueField(serializers.Field):
    pass


@extend_schema_field(
    {"oneOf": [{"type": "number", "minimum": -90, "maximum": 90}, {"type": "string", "pattern": NUMERIC_STRING}]}
)
class LatitudeField(serializers.Field):
    pass


@extend_schema_field(
    {"oneOf": [{"type": "number", "minimum": -180, "maximum": 180}, {"type": "string", "pattern": NUMERIC_STRING}]}
)
class LongitudeField(serializers.Field):
    pass


class ChargeLimitRequestSerializer(serializers.Serializer):
    limit = ChargeLimitValueField(help_text="0.5 to 1, a number or a numeric string.")


class DestinationSerializer(serializers.Serializer):
    latitude = LatitudeField(help_text="-90 to 90 degrees.")
    longitude = LongitudeField(help_text="-180 to 180 degrees.")


# POST /vehicles/{id}/<path> -> its request body; every path in resources.ACTIONS must be here.
ACTION_REQUESTS: dict[str, tuple[type[serializers.Serializer], list[OpenApiExample]]] = {
    "security": (SecurityActionSerializer, [OpenApiExample("Lock", {"action": "LOCK"}, request_only=True)]),
    "charge": (ChargeActionSerializer, [OpenApiExample("Start charging", {"action": "START"}, request_only=True)]),
    "charge/limit": (
        ChargeLimitRequestSerializer,
        [
            OpenApiExample("80 %", {"limit": 0.8}, request_only=True),
            OpenApiExample("80 %, as the Node SDK sends it", {"limit": "0.8"}, request_only=True),
        ],
    ),
    "navigation/destination": (
        DestinationSerializer,
        [OpenApiExample("Palo Alto", {"latitude": 37.4292, "longitude": -122.1381}, request_only=True)],
    ),
}


# --- vehicles, user, permissions, disconnect --------------------------------------------------------------------------


class OffsetPagingSerializer(ExactBody):
    count = serializers.IntegerField(min_value=0, help_text="How many there are in all, not on this page.")
    offset = serializers.IntegerField(min_value=0)


class VehicleListSerializer(ExactBody):
    paging = OffsetPagingSerializer()
    vehicles = serializers.ListField(child=serializers.UUIDField(), help_text="Oldest connection first.")


class UserSerializer(ExactBody):
    id = serializers.UUIDField(help_text="The vehicle owner's id.")


class PermissionsSerializer(ExactBody):
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=list(PERMISSIONS)))
    paging = OffsetPagingSerializer()


class DisconnectSerializer(ExactBody):
    status = serializers.ChoiceField(choices=SUCCESS)


# --- batch ------------------------------------------------------------------------------------------------------------


class BatchPathSerializer(serializers.Serializer):
    path = serializers.CharField(
        help_text='A vehicle data path, e.g. "/odometer" or "tires/pressure"; "/" is the attributes.',
    )


class BatchRequestSerializer(serializers.Serializer):
    requests = BatchPathSerializer(many=True, max_length=MAX_BATCH_REQUESTS)


class BatchItemBodyField(serializers.Field):
    """A sub-request's body: the data of its path, or the error envelope (see BatchItemBodyFieldSchema)."""


class BatchItemSerializer(ExactBody):
    path = serializers.CharField(help_text="The requested path, with a leading slash.")
    code = serializers.IntegerField(help_text="The HTTP status this sub-request would have answered with.")
    headers = serializers.DictField(
        child=serializers.CharField(),
        help_text="Lower-case names: sc-request-id always; sc-data-age, sc-fetched-at (and sc-unit-system) on "
        "success; content-type (and retry-after) on an error.",
    )
    body = BatchItemBodyField()


class BatchResponseSerializer(ExactBody):
    responses = BatchItemSerializer(many=True, help_text="One per request, in order.")


# --- management -------------------------------------------------------------------------------------------------------


class ConnectionSerializer(ExactBody):
    userId = serializers.UUIDField()
    vehicleId = serializers.UUIDField()
    connectedAt = serializers.DateTimeField(help_text="When the user first connected the vehicle.")


class CursorPagingSerializer(ExactBody):
    cursor = serializers.CharField(allow_null=True, help_text="Pass as `cursor` for the next page; null on the last.")


class ConnectionListSerializer(ExactBody):
    connections = ConnectionSerializer(many=True, help_text="Newest first.")
    paging = CursorPagingSerializer()


class DeletedConnectionSerializer(ExactBody):
    userId = serializers.UUIDField()
    vehicleId = serializers.UUIDField()


class DeletedConnectionsSerializer(ExactBody):
    connections = DeletedConnectionSerializer(many=True, help_text="What was disconnected.")


# --- errors -----------------------------------------------------------------------------------------------------------


class ErrorDetailSerializer(ExactBody):
    field = serializers.CharField()
    message = serializers.CharField()


class ResolutionSerializer(ExactBody):
    type = serializers.ChoiceField(choices=["RETRY_LATER", "REAUTHENTICATE", "CONTACT_SUPPORT"], allow_null=True)
    url = serializers.URLField(required=False)


class ErrorSerializer(ExactBody):
    """Smartcar's v2.0 error envelope: every error, whatever raised it, has this shape."""

    type = serializers.ChoiceField(choices=sorted({type_ for type_, _code in ERRORS}))
    code = serializers.CharField(allow_null=True, help_text="Null for AUTHENTICATION, PERMISSION and VALIDATION.")
    description = serializers.CharField()
    docURL = serializers.URLField()
    statusCode = serializers.IntegerField(help_text="The HTTP status, repeated.")
    requestId = serializers.UUIDField(help_text="The SC-Request-Id header, repeated.")
    resolution = ResolutionSerializer()
    detail = ErrorDetailSerializer(many=True, required=False, help_text="Validation errors only: what was wrong.")
    suggestedUserMessage = serializers.CharField(required=False)


class BatchItemBodyFieldSchema(OpenApiSerializerFieldExtension):
    target_class = BatchItemBodyField

    def map_serializer_field(self, auto_schema, direction):
        # anyOf, not oneOf: an empty data body would match several schemas at once.
        bodies = [*dict.fromkeys(READ_BODIES.values()), ErrorSerializer]
        return {"anyOf": [auto_schema.resolve_serializer(body, direction).ref for body in bodies]}


# What each status means on this API; the (type, code) pairs behind it come from the ERRORS table.
ERROR_MEANINGS = {
    400: "The request is malformed: a vehicle id that is not a UUID, a bad query parameter or body (`detail` "
    "names the field), a value the vehicle refused, or an Idempotency-Key used before with other parameters.",
    401: "The Authorization header is missing or malformed, or its credentials are unknown or expired.",
    403: "The token lacks this endpoint's permission, or the vehicle is not connected to the token's grant "
    "(never, revoked, or no such vehicle: the same answer). Run Connect again.",
    404: "No such route: e.g. a vehicle id containing a slash.",
    409: "The vehicle's state prevents the request.",
    413: "The request body is larger than the API accepts (Django's DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB by default).",
    429: "Too many requests for the application, or for the vehicle. Retry after `Retry-After` seconds.",
    430: "The plan does not allow the request.",
    500: "An unexpected error; it was logged.",
    501: "The vehicle or Ignition cannot do this.",
    502: "The vehicle's upstream service failed.",
}


def _codes_for(status: int) -> list[tuple[str, str | None]]:
    return [pair for pair, (pair_status, _description, _resolution) in ERRORS.items() if pair_status == status]


def error_response(status: int) -> OpenApiResponse:
    pairs = _codes_for(status)
    codes = ", ".join(f"`{type_}:{code}`" if code else f"`{type_}`" for type_, code in pairs)
    type_, code = pairs[-1]  # VALIDATION:PARAMETER rather than bare VALIDATION, for the detail
    parameter = (type_, code) == ("VALIDATION", "PARAMETER")
    detail = [{"field": "limit", "message": "limit must be between 0.5 and 1."}] if parameter else None
    example = error_body(type_, code, request_id=EXAMPLE_REQUEST_ID, detail=detail)
    return OpenApiResponse(
        ErrorSerializer,
        description=f"{ERROR_MEANINGS[status]} Errors: {codes}.",
        examples=[OpenApiExample(f"{type_}:{code}" if code else type_, example, status_codes=[status])],
    )


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    return {status: error_response(status) for status in statuses}


# --- parameters and headers -------------------------------------------------------------------------------------------

VEHICLE_ID = OpenApiParameter(
    "vehicle_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The vehicle id (from GET /vehicles)."
)
UNIT_SYSTEM = OpenApiParameter(
    "sc-unit-system",
    str,
    OpenApiParameter.HEADER,
    enum=[METRIC, IMPERIAL],
    description="Units of distances, volumes and pressures; metric when absent or unknown.",
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="A retry with the same key and the same method, path, query, `sc-unit-system` and body within 24 "
    "hours gets the first successful answer back (`Idempotent-Replayed: true`) and is counted (billed) once. Keys "
    "belong to the token's grant; one used with other parameters answers 400 `VALIDATION:IDEMPOTENCY_KEY_MISMATCH`.",
)


def offset_paging(*, default_limit: int, max_limit: int | None) -> list[OpenApiParameter]:
    limit_schema = {"type": "integer", "minimum": 1, "default": default_limit}
    if max_limit is not None:
        limit_schema["maximum"] = max_limit
    return [
        OpenApiParameter("limit", limit_schema, OpenApiParameter.QUERY, description="Page size."),
        OpenApiParameter(
            "offset", {"type": "integer", "minimum": 0, "default": 0}, OpenApiParameter.QUERY, description="Skip."
        ),
    ]


VEHICLES_PAGING = offset_paging(default_limit=VEHICLES_DEFAULT_LIMIT, max_limit=VEHICLES_MAX_LIMIT)
PERMISSIONS_PAGING = offset_paging(default_limit=PERMISSIONS_DEFAULT_LIMIT, max_limit=None)


def connection_filters(purpose: str) -> list[OpenApiParameter]:
    return [
        OpenApiParameter("user_id", OpenApiTypes.UUID, OpenApiParameter.QUERY, description=f"{purpose} this user's."),
        OpenApiParameter(
            "vehicle_id", OpenApiTypes.UUID, OpenApiParameter.QUERY, description=f"{purpose} this vehicle's."
        ),
    ]


CONNECTIONS_PAGING = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": CONNECTIONS_MAX_LIMIT, "default": CONNECTIONS_DEFAULT_LIMIT},
        OpenApiParameter.QUERY,
        description="Page size.",
    ),
    OpenApiParameter("cursor", str, OpenApiParameter.QUERY, description="`paging.cursor` of the previous page."),
]

REQUEST_ID_HEADER = OpenApiParameter(
    "SC-Request-Id",
    OpenApiTypes.UUID,
    OpenApiParameter.HEADER,
    required=True,
    response=True,
    description="This request's id (also `requestId` in an error body).",
)
RETRY_AFTER_HEADER = OpenApiParameter(
    "Retry-After",
    {"type": "integer", "minimum": 1},
    OpenApiParameter.HEADER,
    required=True,
    response=[429],
    description="Whole seconds until the request would be admitted.",
)
DATA_HEADERS = [
    OpenApiParameter(
        "SC-Data-Age",
        OpenApiTypes.DATETIME,
        OpenApiParameter.HEADER,
        required=True,
        response=[200],
        description="When the vehicle recorded this data (ISO 8601, UTC).",
    ),
    OpenApiParameter(
        "SC-Fetched-At",
        OpenApiTypes.DATETIME,
        OpenApiParameter.HEADER,
        required=True,
        response=[200],
        description="When Ignition fetched it from the vehicle (ISO 8601, UTC).",
    ),
]
UNIT_SYSTEM_HEADER = OpenApiParameter(
    "SC-Unit-System",
    str,
    OpenApiParameter.HEADER,
    enum=[METRIC, IMPERIAL],
    required=True,
    response=[200],
    description="The units of this body.",
)


class VehicleApiSchemaGenerator(SchemaGenerator):
    """Generates from `documented_patterns()` unless given patterns or a urlconf; exact bodies get no extra keys."""

    def __init__(self, *args, patterns=None, urlconf=None, **kwargs):
        if patterns is None and urlconf is None:
            # Imported here: drf_spectacular.views, which openapi.py uses, imports this class at import.
            from vehicles.api.openapi import documented_patterns

            patterns = documented_patterns()
        super().__init__(*args, patterns=patterns, urlconf=urlconf, **kwargs)

    def get_schema(self, request=None, public=False):
        result = super().get_schema(request=request, public=public)
        result["tags"] = TAGS
        components = result.setdefault("components", {})
        schemas = components.get("schemas", {})
        for name in exact_component_names() & schemas.keys():
            schemas[name]["additionalProperties"] = False
        share_error_responses(result["paths"], components.setdefault("responses", {}))
        return result


def error_response_name(status: int) -> str:
    """AuthenticationError, VehicleStateError, ...: after the error type(s) behind the status."""
    types = dict.fromkeys(type_ for type_, _code in _codes_for(status))
    return "".join(part.title() for type_ in types for part in type_.split("_")) + "Error"


def share_error_responses(paths: dict, shared: dict) -> None:
    """Every operation answers a status's error alike: one components/responses entry each, not a copy per route."""
    for path_item in paths.values():
        for operation in path_item.values():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                name = error_response_name(int(status))
                if shared.setdefault(name, response) == response:
                    operation["responses"][status] = {"$ref": f"#/components/responses/{name}"}
