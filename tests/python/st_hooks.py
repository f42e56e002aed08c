"""Schemathesis hooks for the API fuzzing test (tests/tests/openapi.rs).

- Two more checks on every response: no write key is in it, neither one the case sent nor
  one already stored (SECRET_WRITE_KEYS, comma-separated); and every write key shown is
  masked as the API promises (at most the last 4 characters, none of a key under 12).
- A 500 in cargo lambda's own problem shape (`httpstatuses.com/500`) is the local emulator
  failing before or after the function, never the function: the API's errors are
  `{"code", "message", "id"}`. Such failures are dropped, and counted on stderr.
- Bodies that are not UTF-8 are not sent: `cargo lambda watch`, which stands in for API
  Gateway here, cannot carry them to the function and answers 500 itself. In AWS they
  arrive base64-encoded, and the API answers 400 (shared/src/api/body.rs's tests).
"""

import os

import schemathesis

STORED = [k for k in os.environ.get("SECRET_WRITE_KEYS", "").split(",") if k]


def _sent_keys(body):
    """Write keys a request body carries: a POST's config, or a patch op's value."""
    keys = []

    def visit(value):
        if isinstance(value, dict):
            for name, inner in value.items():
                if name == "writeKey" and isinstance(inner, str) and len(inner) >= 8 and "*" not in inner:
                    keys.append(inner)
                visit(inner)
        elif isinstance(value, list):
            for inner in value:
                visit(inner)

    visit(body)
    return keys


def _other_strings(body):
    """Every string a body carries that is not a write key."""
    out = []

    def visit(value, name=None):
        if isinstance(value, dict):
            for inner_name, inner in value.items():
                visit(inner, inner_name)
        elif isinstance(value, list):
            for inner in value:
                visit(inner)
        elif isinstance(value, str) and name != "writeKey":
            out.append(value)

    visit(body)
    return out


@schemathesis.check
def no_write_key_in_response(ctx, response, case):
    text = response.text or ""
    headers = str(dict(response.headers))
    # A generated key may be part of another value the case sent (a name, a path parameter),
    # which responses rightly echo: only a key that is nowhere else counts.
    echoed = " ".join(str(v) for v in (case.path_parameters or {}).values()) + " " + " ".join(_other_strings(case.body))
    for key in STORED + _sent_keys(case.body):
        if key in echoed:
            continue
        where = text if key in text else headers
        if key in where:
            at = where.index(key)
            # Test keys only: saying which one and where is what makes a failure useful.
            raise AssertionError(f"write key {key!r} appeared in a response: …{where[max(0, at - 60):at + len(key) + 20]}…")
    return None


def _shown_keys(value):
    """Every `config.writeKey` in a response body."""
    if isinstance(value, dict):
        config = value.get("config")
        if isinstance(config, dict) and isinstance(config.get("writeKey"), str):
            yield config["writeKey"]
        for inner in value.values():
            yield from _shown_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _shown_keys(inner)


@schemathesis.check
def write_key_masked(ctx, response, case):
    try:
        body = response.json()
    except Exception:
        return None
    for shown in _shown_keys(body):
        hidden = len(shown) if len(shown) < 12 else len(shown) - 4
        if shown[:hidden] != "*" * hidden:
            raise AssertionError(f"a write key of {len(shown)} characters is shown as {shown!r}")
    return None


@schemathesis.hook
def filter_case(ctx, case):
    body = case.body
    try:
        if isinstance(body, (bytes, bytearray)):
            bytes(body).decode("utf-8")
        elif isinstance(body, str):
            body.encode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return False
    return True


EMULATOR_ERROR = "https://httpstatuses.com/500"


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    text = response.text or ""
    if response.status_code == 500 and EMULATOR_ERROR in text and '"code"' not in text:
        import sys

        print(f"ignored a cargo lambda emulator 500 on {case.method} {case.path}", file=sys.stderr)
        return False
    return True
