"""The OpenAPI schema (/v2.0/openapi.json) and its docs page (/docs/api/): served, valid, and true to the routes.

The schema is declared by hand (vehicles/api/openapi.py), so these tests keep it from drifting: every
documented operation is a real route answering that method, and every real route is documented.
"""

import json
import re
import uuid

import pytest
from django.core.management import call_command
from django.urls import resolve
from drf_spectacular.validation import validate_schema

from vehicles.api import urls, views
from vehicles.api.resources import ACTIONS, READS

pytestmark = pytest.mark.django_db

SCHEMA_URL = "/v2.0/openapi.json"
DOCS_URL = "/docs/api/"
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
CATCH_ALLS = {views.path_not_found, views.version_not_found}


@pytest.fixture
def served(client):
    response = client.get(SCHEMA_URL)
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method in HTTP_METHODS & item.keys():
            yield method, path, item[method]


def concrete(path: str) -> str:
    return path.replace("{vehicle_id}", str(uuid.uuid4()))


def test_the_schema_is_public_json(client):
    response = client.get(SCHEMA_URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert (schema["info"]["title"], schema["info"]["version"]) == ("Ignition vehicle API", "2.0")


def test_the_schema_is_valid_openapi(served):
    validate_schema(served)  # raises on any violation of the OpenAPI 3 specification


def test_manage_py_spectacular_writes_the_served_schema_without_warnings(served, tmp_path):
    written = tmp_path / "schema.json"
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(written))
    assert json.loads(written.read_text()) == served


def test_paths_are_the_wire_paths(served):
    assert served["paths"]
    for path in served["paths"]:
        assert path.startswith("/v2.0/")
        assert not path.endswith("/")


@pytest.mark.parametrize("trailing_slash", ["", "/"])
def test_every_documented_operation_is_served_by_its_real_view(client, served, trailing_slash):
    for method, path, _operation in operations(served):
        url = concrete(path) + trailing_slash
        assert resolve(url).func not in CATCH_ALLS, f"{method.upper()} {path} is not a route"
        # Without credentials the real view answers 401; a route without this method would answer 404.
        response = client.generic(method.upper(), url)
        assert response.status_code == 401, f"{method.upper()} {path}: {response.status_code}"
        assert response.json()["type"] == "AUTHENTICATION"


def test_every_route_is_documented(served):
    documented = [concrete(path).removeprefix("/v2.0/") for path in served["paths"]]
    for pattern in urls.v2_patterns:
        if pattern.callback in CATCH_ALLS or pattern.name == "vehicle-api-openapi":
            continue
        regex = re.compile(pattern.pattern.regex.pattern)
        assert any(regex.match(path) for path in documented), f"route {regex.pattern} is not in the schema"


def test_every_vehicle_resource_is_documented_with_its_methods(served):
    documented = {(method, path) for method, path, _operation in operations(served)}
    base = "/v2.0/vehicles/{vehicle_id}"
    expected = {("get", f"{base}/{path}".rstrip("/")) for path in READS} | {
        ("post", f"{base}/{path}") for path in ACTIONS
    }
    resources = {(method, path) for method, path in documented if path == base or path.startswith(f"{base}/")}
    others = {(method, f"{base}/{name}") for method, name in [("get", "permissions"), ("delete", "application")]}
    assert resources - others - {("post", f"{base}/batch")} == expected


def test_vehicle_endpoints_take_a_bearer_token_and_management_a_basic_one(served):
    schemes = served["components"]["securitySchemes"]
    for _method, path, operation in operations(served):
        (name,) = operation["security"][0]
        expected = "basic" if path.startswith("/v2.0/management/") else "bearer"
        assert (schemes[name]["type"], schemes[name]["scheme"]) == ("http", expected), path


def test_every_answer_documents_the_request_id_header(served):
    shared = served["components"]["responses"]
    for method, path, operation in operations(served):
        for status, response in operation["responses"].items():
            response = shared[response["$ref"].rsplit("/", 1)[1]] if "$ref" in response else response
            assert response["headers"]["SC-Request-Id"]["required"], f"{method.upper()} {path} {status}"
            if status == "429":
                assert response["headers"]["Retry-After"]["required"]


def test_the_docs_page_renders_swagger_ui_from_our_own_static_files(client):
    response = client.get(DOCS_URL)
    assert response.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.content.decode())
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    # Swagger UI's init script is a file of its own (Content-Security-Policy: nothing inline); it loads our schema.
    (init_script,) = [asset for asset in assets if asset.startswith(f"{DOCS_URL}?")]
    script = client.get(init_script)
    assert script["Content-Type"].startswith("application/javascript")
    assert SCHEMA_URL in script.content.decode()
    for asset in set(assets) - {init_script}:
        assert asset.startswith("/static/"), f"{asset} is not served by us (the docs page must work offline)"
        assert client.get(asset).status_code == 200, asset
