"""The Idempotency-Key decorator for POST views that write: a view returns its service's result,
and the decorator answers it as shape(result) with the view's status.

With a key, the request claims it first (services/idempotency.py); the view hands the claim
(``claim()``) to its service, whose store keeps the answer with the events when it can (then
the answer sent is the one stored, byte for byte); otherwise the answer is stored here, once
the view has returned. A failed request releases its claim."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from flask import Response, current_app, g, request

from consent_api.services import idempotency
from consent_api.services.idempotency import Claim
from consent_api.web.auth import caller, handed_over_error
from consent_api.web.context import deps, idempotency_key

JSON = "application/json"


def idempotent(status: int, shape: Callable[[Any], Any]):
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            handed_over_error()  # what web/fastwrites.py met, before claiming anything again
            key = idempotency_key()
            who = caller() if key is not None else None
            if key is None or who is None or who.tenant_id is None:
                return shape(view(*args, **kwargs)), status
            scope = who.credential_id or who.kind
            digest = idempotency.request_hash(request.method, request.path, request.get_data(cache=True))
            d = deps()
            begun = idempotency.begin(d, who.tenant_id, scope, key, digest, kwargs.get("subject_id"))
            if isinstance(begun, idempotency.Replay):
                response = Response(begun.body, status=begun.status, mimetype=JSON)
                response.headers["Idempotent-Replayed"] = "true"
                return response
            begun.render = _rendering(status, shape)
            g.idempotency_claim = begun
            try:
                result = view(*args, **kwargs)
            except Exception:
                idempotency.abandon(d, who.tenant_id, scope, key)
                raise
            answered = begun.answered
            if answered is None:  # the store could not keep it with the events, or nothing was written
                answered = begun.render(result)
                idempotency.finish(d, who.tenant_id, scope, key, *answered, _subject_ref(answered[1]))
            return Response(answered[1], status=answered[0], mimetype=JSON)

        return wrapper

    return decorate


def _rendering(status: int, shape: Callable[[Any], Any]) -> Callable[[Any], tuple[int, str]]:
    """A result as the answer Flask would send: its JSON exactly as the app writes it. The
    store may call it from its writer thread, where there is no app context: the app's JSON
    provider is taken now."""
    provider = current_app.json

    def render(result: Any) -> tuple[int, str]:
        return status, cast(Response, provider.response(shape(result))).get_data(as_text=True)

    return render


def claim() -> Claim | None:
    """The request's claim on its Idempotency-Key, for the service the view calls."""
    return g.get("idempotency_claim")


def _subject_ref(body: str) -> str | None:
    """Remembered so that erasing the subject also erases its stored answers."""
    try:
        events = json.loads(body).get("events") or []
    except (ValueError, AttributeError):
        return None
    return events[0].get("subject_ref") if events else None
