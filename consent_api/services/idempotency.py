"""Idempotency-Key: a retried request gets the first answer back and writes nothing new.

Keys are scoped to tenant and credential. The first request claims the key with a hash of
its method, path and body; a replay with the same hash gets the stored answer, a different
body gets 409, and a claim whose request failed is released so a corrected retry can run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from consent_api.errors import Conflict
from consent_api.services.deps import Deps

STALE_CLAIM = timedelta(seconds=60)


@dataclass(frozen=True)
class Replay:
    status: int
    body: str


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def begin(deps: Deps, tenant_id: str, scope: str, key: str, digest: str) -> Replay | None:
    """None when this request may run; a Replay when it already ran."""
    now = deps.clock()
    existing = deps.store.claim_idempotency_key(tenant_id, scope, key, digest, now)
    if existing is None:
        return None
    if existing.request_hash != digest:
        raise Conflict("this Idempotency-Key was used with a different request")
    if existing.status is None:
        if now - existing.created_at < STALE_CLAIM:
            raise Conflict("a request with this Idempotency-Key is still in progress; retry shortly")
        # The first attempt died before answering: run again under the same claim.
        return None
    return Replay(existing.status, existing.body or "")


def finish(deps: Deps, tenant_id: str, scope: str, key: str, status: int, body: str,
           subject_ref: str | None) -> None:
    deps.store.complete_idempotency_key(tenant_id, scope, key, status, body, subject_ref)


def abandon(deps: Deps, tenant_id: str, scope: str, key: str) -> None:
    deps.store.release_idempotency_key(tenant_id, scope, key)
