"""Idempotency-Key: a retried request gets the first answer back and writes nothing new.

Keys are scoped to tenant and credential. The first request claims the key with a hash of
its method, path and body; a replay with the same hash gets the stored answer, a different
body gets 409, and a claim whose request failed is released so a corrected retry can run.

The answer is kept with the events it reports, so that no crash can leave one without the
other: a store that commits several writes at once (SQLite) stores it in the transaction of
the events; one that cannot (MongoDB) stores it right after, and the retry of a request whose
attempt died in between (its claim stale, no answer) finds that attempt's events by their
``idempotency_key`` and answers with them instead of writing them again (Store.append).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from consent_api.domain.model import SubjectRecord
from consent_api.errors import Conflict
from consent_api.services.deps import Deps
from consent_api.store.port import Answer


@dataclass(frozen=True)
class Replay:
    status: int
    body: str


@dataclass
class Claim:
    """This request's hold on its Idempotency-Key, handed to the write it guards."""

    scope: str
    key: str
    resumes: datetime | None = None  # an attempt that claimed the key then died unanswered
    # The write's result as the answer (status, body); None when no answer is kept (a bulk load).
    render: Callable[[Any], tuple[int, str]] | None = None
    answered: tuple[int, str] | None = None  # the answer the store committed with the events

    def answer(self, result: Callable[[SubjectRecord, list[dict[str, Any]]], Any]) -> Answer | None:
        """What the store keeps with the events: render(result(record, events))."""
        render = self.render
        if render is None:
            return None
        return Answer(self.scope, self.key, lambda record, events: render(result(record, events)), self.resumes)


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def begin(deps: Deps, tenant_id: str, scope: str, key: str, digest: str,
          subject_id: str | None = None) -> Replay | Claim:
    """A Claim when this request may run; a Replay when it already ran. ``subject_id``: the
    subject the request is about, when its path names one, so that erasing the subject erases
    the claim and its answer too."""
    now = deps.clock()
    existing = deps.store.claim_idempotency_key(tenant_id, scope, key, digest, now, subject_id=subject_id)
    if existing is None:
        return Claim(scope, key)
    if existing.request_hash != digest:
        raise Conflict("this Idempotency-Key was used with a different request")
    if existing.status is None:
        if now - existing.created_at < timedelta(seconds=deps.idempotency_claim_timeout_s):
            raise Conflict("a request with this Idempotency-Key is still in progress; retry shortly")
        # The first attempt died before answering: run again under the same claim, counting
        # what it wrote as written.
        return Claim(scope, key, resumes=existing.created_at)
    return Replay(existing.status, existing.body or "")


def finish(deps: Deps, tenant_id: str, scope: str, key: str, status: int, body: str,
           subject_ref: str | None) -> None:
    deps.store.complete_idempotency_key(tenant_id, scope, key, status, body, subject_ref)


def abandon(deps: Deps, tenant_id: str, scope: str, key: str) -> None:
    deps.store.release_idempotency_key(tenant_id, scope, key)
