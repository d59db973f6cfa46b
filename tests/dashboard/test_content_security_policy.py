"""The Content-Security-Policy header over HTTP; tests/e2e/test_content_security_policy.py proves it in a browser."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNSAFE = ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'")


def policy_of(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.wsgi_request.path}"
    return {name: sources for name, *sources in (part.split() for part in header.split(";") if part.strip())}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/docs/api/", "/overview/"])
def test_every_page_has_a_policy_without_inline_code_or_eval(client, path, owner):
    client.force_login(owner)
    policy = policy_of(client.get(path))
    assert not [source for sources in policy.values() for source in sources if source in UNSAFE]
    assert policy["default-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_the_vehicle_apis_json_goes_without_one(client):
    response = client.get("/v2.0/vehicles")
    assert response["Content-Type"].startswith("application/json")
    assert "Content-Security-Policy" not in response.headers


@pytest.mark.django_db
def test_stripe_js_from_localstripe_is_allowed_from_its_origin_only(client, settings):
    settings.STRIPE_JS_URL = "http://127.0.0.1:8420/js.stripe.com/v3/"
    policy = policy_of(client.get("/accounts/login/"))
    assert policy["script-src"] == ["'self'", "http://127.0.0.1:8420"]
    assert policy["connect-src"] == ["'self'", "http://127.0.0.1:8420"]
    assert policy["frame-src"] == ["http://127.0.0.1:8420"]


@pytest.mark.django_db
def test_real_stripe_js_gets_the_origins_of_stripes_csp_guide(client, settings):
    settings.STRIPE_JS_URL = "https://js.stripe.com/v3/"
    policy = policy_of(client.get("/accounts/login/"))
    assert policy["script-src"] == ["'self'", "https://js.stripe.com", "https://*.js.stripe.com"]
    assert policy["frame-src"] == ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"]
    assert policy["connect-src"] == ["'self'", "https://api.stripe.com"]


def inline_code(html: str) -> list[str]:
    """What a policy without 'unsafe-inline' blocks: <script> without src (JSON data blocks aside), <style>,
    on*= event handler attributes, style= attributes and javascript: URLs."""
    found = [
        tag
        for tag in re.findall(r"<script\b[^>]*>", html)
        if "src=" not in tag and 'type="application/json"' not in tag
    ]
    found += re.findall(r"<style\b", html)
    found += re.findall(r"<[a-z][^>]*\son[a-z]+\s*=", html)
    found += re.findall(r"<[a-z][^>]*\sstyle\s*=", html)
    found += re.findall(r"javascript:", html)
    return found


def test_no_template_has_inline_code():
    """Pages the browser test does not visit are held to the policy too (emails are not pages: they keep inline
    styles, which mail clients need)."""
    offenders = {
        str(template.relative_to(ROOT)): found
        for template in (ROOT / "templates").rglob("*.html")
        if "emails" not in template.parts and (found := inline_code(template.read_text()))
    }
    assert not offenders


def test_the_inline_code_finder_finds_inline_code():
    html = '<script>x()</script><style></style><select onchange="f()"><p style="color: red"><a href="javascript:x">'
    assert len(inline_code(html)) == 5
    assert not inline_code('<script src="/static/js/a.js"></script><script type="application/json">{}</script>')
