"""The decision write answered outside Flask's request cycle (web/fastwrites.py): the same bytes
as Flask's answer (the receipt's signature aside: ECDSA signs with a random nonce, so both are
verified instead), Idempotency-Key included; every error still Flask's problem+json with
marshmallow's messages; and the compiled validation equal to marshmallow's on generated
documents."""

from __future__ import annotations

import itertools
import json
import secrets
import sqlite3
import uuid

import pytest
from flask import request_started
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder, run_wsgi_app

from consent_api.domain.model import ActorType, AgeBand, Channel, OsPermission
from consent_api.errors import Invalid
from consent_api.security.tokens import verify_service_token
from consent_api.web import schemas
from consent_api.web.fastwrites import FastWrites
from consent_api.web.schemas.fast import decisions_in
from tests.builders import consents, decision
from tests.support.api import bearer
from tests.support.apps import ON_A_SQLITE_FILE

PATH = "/v1/subjects/{}/consents"


def fast_layer(app) -> FastWrites:
    layer = app.wsgi_app.wsgi_app.flask_wsgi.wsgi_app  # DefaultHeaders(FastReads(RequestLimits(FastWrites)))
    assert isinstance(layer, FastWrites)
    return layer


def post(app, subject: str, body: dict | bytes, headers: dict[str, str]):
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    environ = EnvironBuilder(path=PATH.format(subject), method="POST", data=data,
                             headers={"Content-Type": "application/json", "X-Request-ID": "req-1",
                                      "User-Agent": "ConsentSDK/1.0", **headers}).get_environ()
    body_out, status, response_headers = run_wsgi_app(app.wsgi_app, environ)
    return status, sorted(response_headers.items()), b"".join(body_out)


def without_signature(answer):
    """The answer with the receipt's signature taken out, and that signature."""
    status, headers, body = answer
    receipt = json.loads(body).get("receipt")
    if receipt is None:
        return answer, None
    signature = receipt.rsplit(".", 1)[1]
    return (status, headers, body.replace(signature.encode(), b"")), receipt


@pytest.fixture
def twins(new_app, app_tenant, app, monkeypatch, tmp_path):
    """The app, and a second app on a copy of its database; ``same_randomness()`` makes both
    draw the same event ids and subject pseudonyms; ``flask_only`` sends the second app's writes
    through Flask."""
    copy = tmp_path / "copy.db"
    with sqlite3.connect(copy) as target:
        app.extensions["consent_api.deps"].store._conn().backup(target)
    other = new_app(database_url=f"sqlite:///{copy}")
    monkeypatch.setattr(fast_layer(other), "_answer", lambda *args: None)

    def same_randomness():
        ids = itertools.count(1)
        monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(ids)))
        monkeypatch.setattr(secrets, "token_hex", lambda n=32: f"{next(ids):0{2 * n}x}")

    return app, other, app_tenant, same_randomness


def both(twins, subject: str, body, headers: dict[str, str]):
    app, other, _, same_randomness = twins
    same_randomness()
    fast = post(app, subject, body, headers)
    same_randomness()
    slow = post(other, subject, body, headers)
    return fast, slow


@ON_A_SQLITE_FILE
@pytest.mark.parametrize("role", ["writer", "admin", "subject"])
@pytest.mark.parametrize("body", [
    consents(decision("personalized_push"), decision("location", False)),
    consents(decision("location", os_permission="granted"), age_band="adult", locale=None,
             actor={"type": "agent", "id": "support-7", "reason": "电话"}, occurred_at="2026-02-28T23:00:00+08:00"),
    consents(decision("precise_location", separate=True), source={"channel": "harmonyos", "ui_text_sha256": "a" * 64}),
])
def test_the_fast_answer_is_byte_for_byte_flasks(twins, role, body):
    app, _, tenant, _ = twins
    fast, slow = both(twins, "u-1", body, tenant.roles("u-1")[role])
    assert fast[0] == "201 CREATED"
    (fast, fast_receipt), (slow, slow_receipt) = without_signature(fast), without_signature(slow)
    assert fast == slow
    jwks = app.test_client().get("/.well-known/jwks.json").json
    assert verify_service_token(fast_receipt, jwks) == verify_service_token(slow_receipt, jwks)


@ON_A_SQLITE_FILE
def test_an_idempotent_write_and_its_replay_are_flasks_bytes(twins):
    _, _, tenant, _ = twins
    headers = {**bearer(tenant.writer), "Idempotency-Key": "order-1"}
    body = consents(decision("personalized_push"))
    first_fast, first_slow = both(twins, "u-2", body, headers)
    assert first_fast[0] == "201 CREATED"
    assert without_signature(first_fast)[0] == without_signature(first_slow)[0]
    replay_fast, replay_slow = both(twins, "u-2", body, headers)
    assert without_signature(replay_fast)[0] == without_signature(replay_slow)[0]  # each app's own first answer
    assert ("Idempotent-Replayed", "true") in replay_fast[1] and replay_fast[2] == first_fast[2]
    conflict_fast, conflict_slow = both(twins, "u-2", consents(decision("location")), headers)
    assert conflict_fast == conflict_slow and conflict_fast[0].startswith("409")


@ON_A_SQLITE_FILE
@pytest.mark.parametrize("role, subject, body, status", [
    ("writer", "u-3", consents(decision("no_such_purpose")), 422),  # refused by the service
    ("writer", "u-3", consents(decision("account", False)), 422),
    ("writer", "u-3", consents(decision("personalized_push"), policy_version="9999"), 422),
    ("writer", "u-3", consents(decision("personalized_push", granted=1)), 422),  # refused by marshmallow
    ("writer", "u-3", consents(decision("personalized_push"), decision("personalized_push")), 422),
    ("writer", "u-3", consents(decision("personalized_push"), extra=True), 422),
    ("writer", "u-3", consents(decision("personalized_push"), source={"channel": "fax"}), 422),
    ("writer", "u-3", b'{"decisions": [], "decisions": []}', 400),
    ("writer", "u-3", b"[1, NaN]", 400),
    ("writer", "bad id!", consents(decision("personalized_push")), 422),
    ("reader", "u-3", consents(decision("personalized_push")), 403),
    ("subject", "u-4", consents(decision("personalized_push")), 403),
    ("publishable", "u-3", consents(decision("personalized_push")), 403),
    (None, "u-3", consents(decision("personalized_push")), 401),
])
def test_every_error_is_flasks_answer(twins, role, subject, body, status):
    _, _, tenant, _ = twins
    headers = tenant.roles("u-3")[role] if role else {"Authorization": "Bearer sk_not_a_key"}
    fast, slow = both(twins, subject, body, headers)
    assert fast == slow
    assert fast[0].startswith(str(status))
    assert ("Content-Type", "application/problem+json") in fast[1]


def test_the_write_skips_flasks_request_cycle_and_errors_do_not(app, api, app_tenant):
    started = []

    def seen(sender, **extra):
        started.append(True)

    request_started.connect(seen, app)
    try:
        api.post(PATH.format("u-5"), consents(decision("personalized_push")), token=app_tenant.writer, expect=201)
        assert started == []
        api.post(PATH.format("u-5"), consents(decision("no_such_purpose")), token=app_tenant.writer, expect=422)
        assert started == [True]
        api.post(PATH.format("u-5") + "?x=1", consents(decision("location")), token=app_tenant.writer, expect=201)
        assert started == [True, True]
    finally:
        request_started.disconnect(seen, app)


# --- the compiled validation -----------------------------------------------------------------

def marshmallow(data):
    try:
        return schemas.load(schemas.DecisionsIn, data)
    except Invalid:
        return None


# Documents that marshmallow accepts, then one value (or none) replaced by anything, boundary
# lengths included: whatever the compiled checks let through must load to the same document.
LENGTHS = [0, 1, 35, 36, 63, 64, 65, 128, 199, 200, 201, 499, 500, 501]
anything = st.one_of(st.none(), st.booleans(), st.integers(-1, 2), st.floats(0, 1), st.text(max_size=3),
                     st.sampled_from(["a\x00", "Push", "9x", ".", "..", "a b", "A" * 64, "fax", "robot", "maybe",
                                      "2026-03-01 08:00:00", "yesterday", *("x" * n for n in LENGTHS)]),
                     st.lists(st.none(), max_size=1), st.dictionaries(st.sampled_from(["extra", "type"]), st.none()))
sized = st.sampled_from(["x" * n for n in LENGTHS])
GOOD = {
    "purpose": st.sampled_from(["push", "location", "a.b-c_9", "x" * 64]),
    "granted": st.booleans(), "separate": st.booleans(),
    "os_permission": st.sampled_from([None, *map(str, OsPermission)]),
    "policy_version": st.sampled_from(["v1", "2026-01", "a.b", "x" * 64]),
    "channel": st.sampled_from(list(map(str, Channel))),
    "collection_point": st.one_of(st.none(), st.text(max_size=5), st.just("x" * 200)),
    "ui_text_sha256": st.sampled_from([None, "a" * 64, "0123456789abcdef" * 4]),
    "sdk_version": st.sampled_from([None, "1.0", "x" * 64]),
    "locale": st.sampled_from([None, "zh-CN", "x" * 35, ""]),
    "type": st.sampled_from(list(map(str, ActorType))),
    "id": st.sampled_from([None, "p-1", "x" * 200]),
    "reason": st.sampled_from([None, "", "x" * 500]),
    "age_band": st.sampled_from([None, *map(str, AgeBand)]),
    "occurred_at": st.sampled_from([None, "2026-03-01T08:00:00Z", "2026-03-01T08:00:00.5+08:00"]),
}


@st.composite
def documents(draw):
    def field(name):
        return draw(GOOD[name])

    def optional(doc, *names):
        for name in names:
            if draw(st.booleans()):
                doc[name] = field(name)
        return doc

    decisions = [optional({"purpose": p, "granted": field("granted")}, "separate", "os_permission")
                 for p in draw(st.lists(GOOD["purpose"], min_size=1, max_size=3, unique=True))]
    doc = optional({"decisions": decisions, "policy_version": field("policy_version"),
                    "source": optional({"channel": field("channel")}, "collection_point", "ui_text_sha256",
                                       "sdk_version")}, "locale", "age_band", "occurred_at")
    if draw(st.booleans()):
        doc["actor"] = None if draw(st.booleans()) else optional({}, "type", "id", "reason")
    places = [(doc, k) for k in [*doc, "extra"]] + [(doc["source"], k) for k in [*doc["source"], "extra"]]
    places += [(d, k) for d in decisions for k in [*d, "extra"]]
    if isinstance(doc.get("actor"), dict):
        places += [(doc["actor"], k) for k in [*doc["actor"], "extra"]]
    if draw(st.integers(0, 3)):  # mostly one value replaced; sometimes the document as it is
        target, key = draw(st.sampled_from(places))
        target[key] = draw(st.one_of(anything, sized, GOOD.get(key, anything)))
    return doc


@given(documents())
def test_the_compiled_validation_accepts_what_marshmallow_accepts_and_returns_the_same(document):
    fast = decisions_in(document)
    assert fast is None or fast == marshmallow(document)


PROBES = [None, True, False, 0, 1, 2, 0.5, "", "a\x00", "Push", "9x", ".", "..", "a b", "A" * 64, "a" * 64,
          "fax", "ios", "robot", "self", "maybe", "granted", "old", "adult", "2026-03-01 08:00:00", "yesterday",
          "2026-03-01T08:00:00Z", [], [None], {}, {"extra": None}, *("x" * n for n in LENGTHS)]


def full_document() -> dict:
    return consents(decision("push", separate=True, os_permission="granted"), decision("location", False),
                    source={"channel": "ios", "collection_point": "settings", "ui_text_sha256": "a" * 64,
                            "sdk_version": "1.0"},
                    actor={"type": "guardian", "id": "p-1", "reason": "minor"}, age_band="under_14",
                    occurred_at="2026-03-01T08:00:00Z")


def places(doc: dict):
    """(path, container, key) of every value of doc, and of one member too many in each object."""
    for key in [*doc, "extra"]:
        yield (key,), doc, key
    for name in ("source", "actor"):
        for key in [*doc[name], "extra"]:
            yield (name, key), doc[name], key
    for i, item in enumerate(doc["decisions"]):
        for key in [*item, "extra"]:
            yield ("decisions", i, key), item, key


@pytest.mark.parametrize("path", [path for path, _, _ in places(full_document())])
def test_every_single_value_the_compiled_validation_takes_marshmallow_takes_alike(path):
    assert decisions_in(full_document()) == marshmallow(full_document()) is not None
    for probe in PROBES:
        doc = full_document()
        container, key = next((c, k) for p, c, k in places(doc) if p == path)
        container[key] = probe
        fast = decisions_in(doc)
        assert fast is None or fast == marshmallow(doc), (path, probe)


def test_a_purpose_twice_is_left_to_marshmallow():
    doc = consents(decision("push"), decision("push", False))
    assert decisions_in(doc) is None and marshmallow(doc) is None


@pytest.mark.parametrize("document", [
    consents(decision("personalized_push")),
    consents(decision("location", False, os_permission="denied", separate=False), age_band="under_14",
             actor={"type": "guardian", "id": "p-1"}, occurred_at="2026-02-28T08:00:00Z"),
    consents(*[decision(f"p{i}") for i in range(100)], actor={}, locale=None,
             source={"channel": "server", "collection_point": None, "ui_text_sha256": None, "sdk_version": None}),
])
def test_valid_documents_take_the_compiled_path(document):
    assert decisions_in(document) == marshmallow(document) is not None
