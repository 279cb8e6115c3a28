"""openapi.yaml as a test oracle: the documented operations, and a validator for real answers.

Every HTTP test goes through ``check_response``: a documented operation's answer must match
its documented status, headers and body; any answer must carry the security headers, and an
error must be problem+json.
"""

from __future__ import annotations

import io
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from werkzeug.wrappers import Request

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "openapi.yaml"
PACKAGED_SPEC_PATH = ROOT / "consent_api" / "web" / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
SECURITY_HEADERS = ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
                    "Content-Security-Policy", "Cache-Control")


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_bytes())


@cache
def openapi() -> OpenAPI:
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_dict(spec(), config=config)


def documented_operations(document: dict[str, Any] | None = None) -> set[tuple[str, str]]:
    """{(path, METHOD)} as the document lists them."""
    document = document or spec()
    return {(path, method.upper()) for path, item in document["paths"].items()
            for method in item if method in HTTP_METHODS}


def flask_operations(app) -> set[tuple[str, str]]:
    """{(path, METHOD)} as Flask routes them, in OpenAPI's {param} spelling (HEAD/OPTIONS are implicit).
    The server-rendered pages (web/pages/) are not operations of the JSON API."""
    from consent_api.web.pages import is_page_endpoint

    ops = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or is_page_endpoint(app, rule.endpoint):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        ops |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return ops


def problem_schema() -> dict[str, Any]:
    return spec()["components"]["schemas"]["Problem"]


def check_response(response) -> str | None:
    """Validate one Flask test-client answer against the document; returns the operationId.

    Raises AssertionError (or openapi-core's validation errors) when the answer does not match.
    """
    for name in SECURITY_HEADERS:
        assert response.headers.get(name), f"{name} missing on {response.status_code} {response.request.path}"
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json", response.mimetype
        body = json.loads(response.get_data())
        jsonschema.validate(body, problem_schema())
        assert body["status"] == response.status_code
        assert "Traceback" not in response.get_data(as_text=True)
    if response.status_code == 500:
        return None  # any operation may fail unexpectedly; the rules above are all it promises
    request = sent_request(response)
    try:
        openapi().validate_response(request, WerkzeugOpenAPIResponse(response))
    except (PathNotFound, OperationNotFound):
        # Not a documented operation: only the generic rules above apply (404 route, 405 method).
        assert response.status_code in (404, 405), (
            f"{response.request.method} {response.request.path} answered {response.status_code} "
            "but is not in openapi.yaml")
        return None
    return operation_id(response.request.method, response.request.path)


def sent_request(response) -> WerkzeugOpenAPIRequest:
    """The request an answer belongs to, without its (already consumed) body: only the answer is
    validated here; what the server accepts is schemathesis's job."""
    environ = dict(response.request.environ, CONTENT_LENGTH="0")
    environ["wsgi.input"] = io.BytesIO(b"")
    return WerkzeugOpenAPIRequest(Request(environ))


def operation_id(method: str, path: str) -> str | None:
    for template, item in sorted(spec()["paths"].items(), key=lambda kv: kv[0].count("{")):
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return item[method.lower()]["operationId"]
    return None
