"""A strict layer in front of localstripe: what real Stripe enforces and localstripe lets pass.

    python -m tests.strict_stripe --upstream http://127.0.0.1:<localstripe port> --port <port> [--rate-limit 25]

Every request is forwarded to localstripe as it came (method, path, query, headers, body; the fake Stripe.js at
/js.stripe.com/v3/, CORS, localstripe's /_config/ routes included) and its answer returned, except where one of
these documented Stripe behaviours applies:

1. Minimum charge amount: a PaymentIntent of less than 50 cents in USD is refused (400 amount_too_small), nothing is
   forwarded. https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts
2. Idempotency keys (POST with `Idempotency-Key`): the first result is saved for the proxy's lifetime (Stripe: at least
   24 hours) and replayed, with `Idempotent-Replayed: true`, to a request with the same key and the same method, path
   and parameters (compared form-decoded, in any order); other parameters with the key: 400 idempotency_error. Saved
   only once the endpoint ran: 2xx, 402 and 5xx answers, never 400/401/404 validation errors, 409 or 429. A request
   whose key is still in flight gets 409 idempotency_key_in_use (the SDK retries 409s).
   https://docs.stripe.com/api/idempotent_requests, https://docs.stripe.com/error-low-level#idempotency
3. Rate limit: at most `--rate-limit` (25, Stripe's test-mode limit) requests to /v1/ in any rolling second; more: 429
   rate_limit. https://docs.stripe.com/rate-limits
4. Off-session authentication: an off-session confirmed PaymentIntent on card 4000 0027 6000 3184 fails with 402
   authentication_required and the PaymentIntent shows as requires_payment_method with last_payment_error (localstripe
   leaves it in requires_action, which it keeps upstream so that Stripe.js's on-session confirmation still works; a
   server-side confirm of it answers requires_action on-session, the same 402 off-session); card
   4000 0025 0000 3155 needs authentication on setup only, so its off-session payment succeeds.
   https://docs.stripe.com/testing#authentication-and-setup,
   https://docs.stripe.com/payments/save-and-reuse#charge-saved-payment-method,
   https://docs.stripe.com/payments/3d-secure/authentication-flow
5. Test payment methods localstripe lacks (`pm_card_authenticationRequired`, …, see CANONICAL): created upstream from
   their card number wherever they are a `payment_method` parameter or /v1/payment_methods/<id>[/attach].
   https://docs.stripe.com/testing?testing-method=payment-methods
6. Test controls under /_strict/ (never forwarded): GET stats, POST reset_stats, POST config {"rate_limit": n},
   POST fail_next {"path", "method", "status", "count"}: the next matching requests get that status with an api_error
   body, unforwarded, saved under their idempotency key as Stripe saves 500s; POST slow_next {"path", "method",
   "seconds", "count"}: the next matching requests wait that long before they are forwarded (a request in flight).

Not enforced (localstripe's behaviour stands): webhooks for the rewritten PaymentIntents (no payment_failed for the
3184 decline; localstripe's own events still go out), card brands (localstripe calls every card a visa), any other
minimum or currency, Stripe-Should-Retry headers, the charge object of the 3184 failure.
"""

import argparse
import collections
import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

# https://docs.stripe.com/testing?testing-method=payment-methods: canonical test payment method ids → card numbers
CANONICAL = {
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_authenticationRequiredOnSetup": "4000002500003155",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_mastercard": "5555555555554444",
}
ALWAYS_AUTHENTICATE, AUTHENTICATE_ON_SETUP = "3184", "3155"  # last4 of the two 3-D Secure test cards
MINIMUM_CENTS = {"usd": 50}  # https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts
NOT_SAVED = {400, 401, 403, 404, 409, 429}  # the endpoint did not run: Stripe saves no idempotent result
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "date", "server"}


def error_body(type_: str, message: str, **fields) -> dict:
    return {"error": {"type": type_, "message": message, **fields}}


class Strict:
    """The proxy's state, shared by its request threads."""

    def __init__(self, upstream: str, rate_limit: int):
        self.upstream = urlsplit(upstream)
        self.rate_limit = rate_limit
        self.lock = threading.Lock()
        self.keys: dict[str, dict] = {}  # idempotency key → {"fingerprint", "response" (None while in flight)}
        self.recent: collections.deque[float] = collections.deque()  # admitted /v1/ requests' times, last second
        self.failures: list[dict] = []  # fail_next and slow_next rules
        self.needs_authentication: dict[str, dict] = {}  # PaymentIntent id → its last_payment_error
        self.reset_stats()

    def reset_stats(self) -> None:
        self.stats = {
            "max_requests_in_a_second": 0,
            "rate_limited": 0,
            "replayed": 0,
            "idempotency_errors": 0,
            "idempotency_in_use": 0,
            "amount_too_small": 0,
            "authentication_required": 0,
            "failed_on_purpose": 0,
            "slowed_on_purpose": 0,
            "requests": collections.Counter(),
        }

    # Upstream

    def call(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        """One request to localstripe: (status, headers, body)."""
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            connection.request(method, path, body=body or None, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def call_json(self, method: str, path: str, auth: str, form: list | None = None) -> tuple[int, dict]:
        headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
        status, _, body = self.call(method, path, urlencode(form or []).encode(), headers)
        return status, json.loads(body or b"{}")

    def canonical(self, payment_method: str, auth: str) -> str:
        """A fresh upstream PaymentMethod for a test id localstripe lacks (Stripe makes a new one per use too)."""
        if payment_method not in CANONICAL:
            return payment_method
        card = {"number": CANONICAL[payment_method], "exp_month": "12", "exp_year": "2034", "cvc": "123"}
        form = [("type", "card")] + [(f"card[{key}]", value) for key, value in card.items()]
        status, created = self.call_json("POST", "/v1/payment_methods", auth, form)
        return created["id"] if status == 200 else payment_method

    # Rate limit and idempotency

    def admit(self) -> bool:
        """Count one /v1/ request in the rolling second; False if it is over the limit."""
        now = time.monotonic()
        with self.lock:
            while self.recent and now - self.recent[0] >= 1.0:
                self.recent.popleft()
            if len(self.recent) >= self.rate_limit:
                self.stats["rate_limited"] += 1
                return False
            self.recent.append(now)
            self.stats["max_requests_in_a_second"] = max(self.stats["max_requests_in_a_second"], len(self.recent))
            return True

    def claim_key(self, key: str, fingerprint: tuple):
        """("new", None) to run the request, ("replay", saved response) or ("error", (status, body))."""
        with self.lock:
            entry = self.keys.get(key)
            if entry is None:
                self.keys[key] = {"fingerprint": fingerprint, "response": None}
                return "new", None
            if entry["fingerprint"] != fingerprint:
                self.stats["idempotency_errors"] += 1
                message = (
                    "Keys for idempotent requests can only be used with the same parameters they were first used "
                    f"with. Try using a key other than '{key}' if you meant to execute a different request."
                )
                return "error", (400, error_body("idempotency_error", message))
            if entry["response"] is None:
                self.stats["idempotency_in_use"] += 1
                message = (
                    "There is currently another in-progress request using this Idempotent Key (that probably means "
                    "you submitted twice, and the other request is still going through): "
                    f"{key}. Please try again later."
                )
                return "error", (409, error_body("invalid_request_error", message, code="idempotency_key_in_use"))
            self.stats["replayed"] += 1
            return "replay", entry["response"]

    def settle_key(self, key: str, response: tuple) -> None:
        with self.lock:
            if response[0] in NOT_SAVED:
                self.keys.pop(key, None)
            elif key in self.keys:
                self.keys[key]["response"] = response

    def forget_key(self, key: str) -> None:
        with self.lock:
            self.keys.pop(key, None)

    def rule_for(self, method: str, path: str) -> dict:
        """The fail_next/slow_next rule this request uses up ({} if none): {"status": …} or {"seconds": …}."""
        with self.lock:
            for rule in self.failures:
                if rule["path"] == path and rule["method"].upper() == method:
                    rule["count"] -= 1
                    if rule["count"] <= 0:
                        self.failures.remove(rule)
                    self.stats["failed_on_purpose" if "status" in rule else "slowed_on_purpose"] += 1
                    return rule
        return {}

    # PaymentIntents

    def as_stripe_shows(self, intent: dict) -> dict:
        """A PaymentIntent localstripe holds in requires_action after a 3184 off-session decline, as Stripe has it."""
        error = self.needs_authentication.get(intent.get("id"))
        if error is None or intent.get("status") != "requires_action":
            return intent
        shown = {"status": "requires_payment_method", "next_action": None, "payment_method": None}
        return {**intent, **shown, "last_payment_error": error}

    def rewrite(self, body: bytes) -> bytes:
        try:
            data = json.loads(body)
        except ValueError:
            return body
        if isinstance(data, dict) and data.get("object") == "payment_intent":
            return json.dumps(self.as_stripe_shows(data)).encode()
        if isinstance(data, dict) and data.get("object") == "list" and isinstance(data.get("data"), list):
            data["data"] = [self.as_stripe_shows(item) if isinstance(item, dict) else item for item in data["data"]]
            return json.dumps(data).encode()
        return body

    def confirm_after_decline(self, intent_id: str, params: dict, auth: str):
        """Confirming a PaymentIntent declined for authentication_required again: on-session, Stripe asks for the
        check (requires_action, as localstripe still holds it); off-session, the same 402. None: not such a one."""
        if intent_id not in self.needs_authentication:
            return None
        status, intent = self.call_json("GET", f"/v1/payment_intents/{intent_id}", auth)
        if status != 200 or intent.get("status") != "requires_action":
            return None
        if params.get("off_session") == "true":
            error = self.needs_authentication[intent_id]
            body = {"error": {**error, "payment_intent": self.as_stripe_shows(intent)}}
            return 402, [("Content-Type", "application/json")], json.dumps(body).encode()
        with self.lock:
            self.needs_authentication.pop(intent_id, None)  # shown as localstripe has it from now on
        return 200, [("Content-Type", "application/json")], json.dumps(intent).encode()

    def off_session_create(self, form: list, auth: str, forward):
        """An off-session confirmed PaymentIntent on a 3-D Secure test card, as Stripe answers it; None otherwise."""
        params = dict(form)
        if params.get("off_session") != "true" or params.get("confirm") != "true" or not params.get("payment_method"):
            return None
        status, method = self.call_json("GET", f"/v1/payment_methods/{params['payment_method']}", auth)
        last4 = (method.get("card") or {}).get("last4") if status == 200 else None
        if last4 not in (ALWAYS_AUTHENTICATE, AUTHENTICATE_ON_SETUP):
            return None
        status, headers, body = forward()
        intent = json.loads(body) if status == 200 else {}
        if intent.get("status") != "requires_action":
            return status, headers, body
        if last4 == AUTHENTICATE_ON_SETUP:  # authenticated when it was set up: the off-session payment goes through
            answer = json.dumps({"client_secret": intent["client_secret"], "key": "pk_test_strict"}).encode()
            authenticate = f"/v1/payment_intents/{intent['id']}/_authenticate?success=true"
            return self.call("POST", authenticate, answer, {"Content-Type": "application/json"})
        message = "Your card was declined. This transaction requires authentication."
        error = {
            "type": "card_error",
            "code": "authentication_required",
            "decline_code": "authentication_required",
            "message": message,
            "payment_method": method,
            "doc_url": "https://docs.stripe.com/error-codes/authentication-required",
        }
        with self.lock:
            self.needs_authentication[intent["id"]] = error
            self.stats["authentication_required"] += 1
        body = {"error": {**error, "payment_intent": self.as_stripe_shows(intent)}}
        return 402, [("Content-Type", "application/json")], json.dumps(body).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "StrictServer"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_GET(self):
        self.handle_any()

    do_POST = do_DELETE = do_OPTIONS = do_PUT = do_PATCH = do_HEAD = do_GET

    def handle_any(self):
        strict = self.server.strict
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        if path.startswith("/_strict/"):
            return self.reply(*self.control(path, body))
        if path.startswith("/v1/"):
            with strict.lock:
                strict.stats["requests"][f"{self.command} {path}"] += 1
            if not strict.admit():
                message = (
                    "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."
                )
                return self.reply(429, error_body("invalid_request_error", message, code="rate_limit"))
        key = self.headers.get("Idempotency-Key") if self.command == "POST" else None
        if key is not None:
            outcome, saved = strict.claim_key(key, (self.command, self.path, self.params(body)))
            if outcome == "error":
                return self.reply(*saved)
            if outcome == "replay":
                return self.reply(*saved, replayed=True)
        try:
            response = self.run(path, body)
        except (OSError, http.client.HTTPException) as error:  # localstripe is unreachable: not Stripe's answer
            response = (502, [], str(error).encode())
            if key is not None:
                strict.forget_key(key)
                key = None
        response = response if len(response) == 3 else self.encoded(*response)
        if key is not None:
            strict.settle_key(key, response)
        self.reply(*response)

    def params(self, body: bytes):
        try:
            return sorted(json.loads(body).items()) if body.startswith(b"{") else sorted(parse_qsl(body.decode(), True))
        except ValueError:
            return body

    def run(self, path: str, body: bytes):
        """The request's answer: (status, headers, body bytes) or (status, json)."""
        strict = self.server.strict
        rule = strict.rule_for(self.command, path)
        if "status" in rule:
            status = int(rule["status"])
            kind = rule.get("type") or ("api_error" if status >= 500 else "invalid_request_error")
            return status, error_body(kind, f"Failed on purpose by strict_stripe fail_next ({status} {kind}).")
        time.sleep(float(rule.get("seconds", 0)))
        form = parse_qsl(body.decode(errors="replace"), True) if self.is_form() else None
        auth = self.headers.get("Authorization", "")
        if self.command == "POST" and path == "/v1/payment_intents" and form is not None:
            params = dict(form)
            minimum = MINIMUM_CENTS.get(params.get("currency", "").lower())
            if minimum and params.get("amount", "").isdigit() and int(params["amount"]) < minimum:
                with strict.lock:
                    strict.stats["amount_too_small"] += 1
                message = f"Amount must be at least ${minimum / 100:.2f} usd"
                doc_url = "https://docs.stripe.com/error-codes/amount-too-small"
                return 400, error_body(
                    "invalid_request_error", message, code="amount_too_small", param="amount", doc_url=doc_url
                )
        upstream_path = self.path
        parts = path.split("/")
        if path.startswith("/v1/payment_methods/") and len(parts) > 3 and parts[3] in CANONICAL:
            parts[3] = strict.canonical(parts[3], auth)
            query = urlsplit(self.path).query
            upstream_path = "/".join(parts) + (f"?{query}" if query else "")
        if form is not None and self.command == "POST" and dict(form).get("payment_method") in CANONICAL:
            form = [(k, strict.canonical(v, auth) if k == "payment_method" else v) for k, v in form]
            body = urlencode(form).encode()

        def forward():
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers.pop("Idempotency-Key", None)  # localstripe ignores it; the proxy answers for it
            status, response_headers, raw = strict.call(self.command, upstream_path, body, headers)
            if path.startswith("/v1/payment_intents") and status == 200:
                raw = strict.rewrite(raw)
            return status, response_headers, raw

        if self.command == "POST" and path == "/v1/payment_intents" and form is not None:
            answered = strict.off_session_create(form, auth, forward)
            if answered is not None:
                return answered
        if self.command == "POST" and len(parts) == 5 and parts[2:5:2] == ["payment_intents", "confirm"]:
            answered = strict.confirm_after_decline(parts[3], dict(form or []), auth)
            if answered is not None:
                return answered
        return forward()

    def is_form(self) -> bool:
        return "application/x-www-form-urlencoded" in self.headers.get("Content-Type", "")

    def control(self, path: str, body: bytes):
        strict = self.server.strict
        data = json.loads(body or b"{}")
        with strict.lock:
            if path == "/_strict/stats" and self.command == "GET":
                counts = dict(strict.stats["requests"])
                return 200, {**strict.stats, "requests": counts, "rate_limit": strict.rate_limit}
            if path == "/_strict/reset_stats" and self.command == "POST":
                strict.reset_stats()
                strict.recent.clear()
                return 200, {}
            if path == "/_strict/config" and self.command == "POST":
                strict.rate_limit = int(data.get("rate_limit", strict.rate_limit))
                return 200, {"rate_limit": strict.rate_limit}
            if path in ("/_strict/fail_next", "/_strict/slow_next") and self.command == "POST":
                rule = {"path": data["path"], "method": data.get("method", "POST"), "count": int(data.get("count", 1))}
                if rule["count"] <= 0:  # count 0: forget the rules for this request (Stripe is back)
                    same = (rule["path"], rule["method"].upper())
                    strict.failures[:] = [r for r in strict.failures if (r["path"], r["method"].upper()) != same]
                    return 200, {}
                if path == "/_strict/fail_next":
                    rule["status"] = int(data.get("status", 500))
                    rule["type"] = data.get("type", "")
                else:
                    rule["seconds"] = float(data["seconds"])
                strict.failures.append(rule)
                return 200, {}
        return 404, error_body("invalid_request_error", f"No strict_stripe control {self.command} {path}")

    @staticmethod
    def encoded(status: int, data: dict):
        return status, [("Content-Type", "application/json")], json.dumps(data).encode()

    def reply(self, status: int, headers_or_data, raw: bytes | None = None, *, replayed: bool = False):
        if raw is None:
            status, headers, raw = self.encoded(status, headers_or_data)
        else:
            headers = headers_or_data
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        if replayed:
            self.send_header("Idempotent-Replayed", "true")
        origin = self.headers.get("Origin")
        if origin and not any(name.lower() == "access-control-allow-origin" for name, _ in headers):
            self.send_header("Access-Control-Allow-Origin", origin)  # the proxy's own answers, to Stripe.js too
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)


class StrictServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, strict: Strict):
        super().__init__(address, Handler)
        self.strict = strict


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="localstripe's base URL")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rate-limit", type=int, default=25, help="requests to /v1/ per rolling second")
    args = parser.parse_args(argv)
    server = StrictServer((args.host, args.port), Strict(args.upstream, args.rate_limit))
    print(f"strict_stripe on http://{args.host}:{args.port} in front of {args.upstream}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
