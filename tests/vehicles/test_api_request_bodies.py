"""Malformed and oversized request bodies over real HTTP: always the Smartcar envelope, never a 500 or HTML.

A review found that a 20 MB body answered 500 (Django's RequestDataTooBig reached the safety net).
"""

import json

import pytest
import requests
from django.conf import settings

pytestmark = pytest.mark.django_db(transaction=True)

TWENTY_MB = 20 * 1024 * 1024
MULTIPART_FORM = b'--b\r\nContent-Disposition: form-data; name="action"\r\n\r\nLOCK\r\n--b--\r\n'


def send(live_server, api, method, path, *, data=b"", content_type="application/json", headers=None):
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": content_type, **(headers or {})}
    return requests.request(method, live_server.url + api.base + path, data=data, headers=headers, timeout=60)


def assert_http_envelope(response, type_, code, status):
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert (body["type"], body["code"], body["statusCode"]) == (type_, code, status)
    assert body["requestId"] == response.headers["SC-Request-Id"]
    return body


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/security", {}),
        ("POST", "/batch", {}),
        ("GET", "/odometer", {"Idempotency-Key": "big"}),  # the key's fingerprint reads the body
    ],
)
def test_a_20_mb_body_answers_413_in_the_envelope(live_server, api, method, path, headers):
    data = b'{"action": "LOCK", "padding": "' + b"x" * TWENTY_MB + b'"}'

    response = send(live_server, api, method, path, data=data, headers=headers)

    body = assert_http_envelope(response, "VALIDATION", "BODY_TOO_LARGE", 413)
    assert f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes" in body["description"]
    assert not api.provider.calls


def test_a_body_just_under_the_limit_is_read(live_server, api):
    padding = settings.DATA_UPLOAD_MAX_MEMORY_SIZE - 100
    data = json.dumps({"action": "LOCK", "padding": "x" * padding}).encode()

    assert send(live_server, api, "POST", "/security", data=data).status_code == 200
    assert [call[0] for call in api.provider.calls] == ["lock"]


JSON = "application/json"


@pytest.mark.parametrize(
    ("path", "data", "content_type", "code", "field"),
    [
        ("/security", b'{"action": "LOCK"', JSON, None, "body"),  # invalid JSON
        ("/security", b"", JSON, None, "body"),  # no body
        ("/security", b"action=LOCK", "application/x-www-form-urlencoded", None, "body"),  # a form, not JSON
        ("/security", MULTIPART_FORM, "multipart/form-data; boundary=b", None, "body"),
        ("/security", b"--broken", "multipart/form-data", None, "body"),  # a multipart type without a boundary
        ("/security", b'\xff\xfe{"action": "LOCK"}', JSON, None, "body"),  # not UTF-8
        ("/security", b'["LOCK"]', JSON, None, "body"),  # JSON, but not an object
        ("/security", b'{"action": "OPEN"}', JSON, "PARAMETER", "action"),
        ("/batch", b'[{"path": "/odometer"}]', JSON, None, "body"),  # a batch body that is a list
        ("/batch", b'"requests"', JSON, None, "body"),
        ("/batch", b'{"requests": {"path": "/odometer"}}', JSON, None, "requests"),
        ("/charge/limit", b'{"limit": 1e999}', JSON, "PARAMETER", "limit"),  # JSON's infinity
    ],
)
def test_a_malformed_body_answers_400_validation(live_server, api, path, data, content_type, code, field):
    response = send(live_server, api, "POST", path, data=data, content_type=content_type)

    body = assert_http_envelope(response, "VALIDATION", code, 400)
    assert body["detail"][0]["field"] == field
    assert not api.provider.calls


def test_non_utf8_bytes_in_the_path_query_and_headers_answer_the_envelope(live_server, api):
    url = f"{live_server.url}/v2.0/vehicles/%FF%FE/odometer?limit=%FF"
    headers = {"Authorization": f"Bearer {api.token}", "Idempotency-Key": b"\xff\xfe", "sc-unit-system": b"\xff"}
    assert_http_envelope(requests.get(url, headers=headers, timeout=10), "VALIDATION", None, 400)

    keyed = send(live_server, api, "GET", "/odometer", headers={"Idempotency-Key": b"\xff\xfe"})
    assert keyed.status_code == 200
    retry = send(live_server, api, "GET", "/odometer", headers={"Idempotency-Key": b"\xff\xfe"})
    assert retry.headers["Idempotent-Replayed"] == "true"
