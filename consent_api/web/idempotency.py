"""The Idempotency-Key decorator for POST views that write."""

from __future__ import annotations

import json
from functools import wraps

from flask import Response, make_response, request

from consent_api.errors import ConsentApiError
from consent_api.services import idempotency
from consent_api.web.auth import caller
from consent_api.web.context import deps, idempotency_key


def idempotent(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        key = idempotency_key()
        if key is None:
            return view(*args, **kwargs)
        who = caller()
        if who.tenant_id is None:
            return view(*args, **kwargs)
        scope = who.credential_id or who.kind
        digest = idempotency.request_hash(request.method, request.path, request.get_data(cache=True))
        d = deps()
        replay = idempotency.begin(d, who.tenant_id, scope, key, digest)
        if replay is not None:
            response = Response(replay.body, status=replay.status, mimetype="application/json")
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            response = make_response(view(*args, **kwargs))
        except ConsentApiError:
            idempotency.abandon(d, who.tenant_id, scope, key)
            raise
        except Exception:
            idempotency.abandon(d, who.tenant_id, scope, key)
            raise
        if 200 <= response.status_code < 300:
            body = response.get_data(as_text=True)
            idempotency.finish(d, who.tenant_id, scope, key, response.status_code, body,
                               _subject_ref(body))
        else:
            idempotency.abandon(d, who.tenant_id, scope, key)
        return response

    return wrapper


def _subject_ref(body: str) -> str | None:
    """Remembered so that erasing the subject also erases its stored answers."""
    try:
        events = json.loads(body).get("events") or []
    except (ValueError, AttributeError):
        return None
    return events[0].get("subject_ref") if events else None
