"""Tenant isolation as a property: two tenants with the same subject ids and purpose keys, a
generated sequence of API calls on both, and after every read the answer holds nothing of the
other tenant and counts exactly what its own tenant did (a model of the calls says how much)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import POLICY
from tests.support.api import Api, Tenant, bearer

SUBJECTS = ["u-1", "u-2", "u-3"]
SHARED = ["push", "sms", "location"]  # both tenants define these keys, with their own titles


@dataclass
class Model:
    """What one tenant should answer: its subjects' event counts and current grants."""

    events: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    granted: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def exists(self, subject: str) -> bool:
        return self.events.get(subject, 0) > 0


@dataclass
class Side:
    name: str
    tenant: Tenant
    own_purpose: str
    model: Model = field(default_factory=Model)

    @property
    def marker(self) -> str:
        return f"marker-{self.name}"


def _setup(new_app):
    """A fresh app (one per generated example) with the two tenants."""
    client = new_app(database_url="sqlite:///:memory:").test_client()
    sides = []
    for name in ("a", "b"):
        tenant = Api(client).new_tenant(f"tenant-{name}", purposes=None, roles=True)
        tenant.policy()
        admin = bearer(tenant.admin)
        side = Side(name, tenant, own_purpose=f"only_{name}")
        for key in [*SHARED, side.own_purpose]:
            body = {"kind": "marketing", "title": {"en": f"{key} of {side.marker}"}}
            assert client.put(f"/v1/purposes/{key}", json=body, headers=admin).status_code == 201
        sides.append(side)
    return client, sides


actions = st.one_of(
    st.tuples(st.just("record"), st.integers(0, 1), st.sampled_from(SUBJECTS),
              st.lists(st.tuples(st.sampled_from(SHARED + ["own"]), st.booleans()), min_size=1, max_size=3,
                       unique_by=lambda d: d[0])),
    st.tuples(st.just("withdraw_all"), st.integers(0, 1), st.sampled_from(SUBJECTS)),
    st.tuples(st.just("prompt"), st.integers(0, 1), st.sampled_from(SUBJECTS), st.sampled_from(SHARED)),
    st.tuples(st.just("erase"), st.integers(0, 1), st.sampled_from(SUBJECTS)),
)


def _act(client, side: Side, action) -> None:
    kind, _, subject = action[:3]
    m, t = side.model, side.tenant
    source = {"channel": "ios", "collection_point": side.marker}
    if kind == "record":
        pairs = [(side.own_purpose if p == "own" else p, g) for p, g in action[3]]
        body = {"decisions": [{"purpose": p, "granted": g} for p, g in pairs], "policy_version": POLICY,
                "source": source}
        assert client.post(f"/v1/subjects/{subject}/consents", json=body,
                           headers=bearer(t.writer)).status_code == 201
        m.events[subject] += len(pairs)
        for p, g in pairs:
            (m.granted[subject].add if g else m.granted[subject].discard)(p)
    elif kind == "withdraw_all":
        r = client.post(f"/v1/subjects/{subject}/consents/withdraw-all", json={"source": source},
                        headers=bearer(t.subject_token(subject)))
        assert r.status_code == (200 if m.exists(subject) else 404), r.get_json()
        if m.exists(subject):
            m.events[subject] += len(m.granted[subject])
            m.granted[subject].clear()
    elif kind == "prompt":
        r = client.post(f"/v1/subjects/{subject}/prompts", json={"purposes": [action[3]], "source": source},
                        headers=bearer(t.writer))
        assert r.status_code == 201
        m.events[subject] += 1
    elif kind == "erase":
        r = client.delete(f"/v1/subjects/{subject}", headers=bearer(t.admin))
        assert r.status_code == (204 if m.exists(subject) else 404)
        m.events.pop(subject, None)
        m.granted.pop(subject, None)


def _reads(client, side: Side):
    """Every read a tenant's credentials can make, with what the model says it must contain."""
    t, m = side.tenant, side.model
    reader = bearer(t.reader)
    yield client.get("/v1/purposes", headers=reader), None
    yield client.get("/v1/keys", headers=bearer(t.admin)), None
    for purpose in [*SHARED, side.own_purpose]:
        audience = client.get(f"/v1/audiences/{purpose}", headers=reader)
        expected = sorted(s for s in SUBJECTS if m.exists(s) and purpose in m.granted[s])
        assert audience.get_json()["items"] == expected, (side.name, purpose)
        yield audience, None
        checks = client.post("/v1/checks", json={"purpose": purpose, "subject_ids": SUBJECTS}, headers=reader)
        assert checks.get_json()["results"] == {s: s in expected for s in SUBJECTS}
        yield checks, None
    for subject in SUBJECTS:
        token = bearer(t.subject_token(subject))
        state = client.get(f"/v1/subjects/{subject}/consents", headers=token)
        history = client.get(f"/v1/subjects/{subject}/history?limit=500", headers=reader)
        one = client.get(f"/v1/subjects/{subject}/consents/push", headers=reader)
        if not m.exists(subject):
            assert state.status_code == history.status_code == one.status_code == 404
            continue
        assert len(history.get_json()["items"]) == m.events[subject]
        purposes = state.get_json()["purposes"]
        assert set(purposes) == {*SHARED, side.own_purpose}
        assert {k for k, v in purposes.items() if v["allowed"]} == m.granted[subject]
        for response in (state, history, one):
            yield response, None


# new_app makes a new app on a new in-memory store at each call: nothing carries over between examples
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(actions, min_size=1, max_size=15))
def test_nothing_of_one_tenant_shows_in_the_other(new_app, steps):
    client, sides = _setup(new_app)
    for action in steps:
        _act(client, sides[action[1]], action)
    for me, other in (sides, sides[::-1]):
        foreign = [other.tenant.id, other.marker, other.own_purpose, *other.tenant.key_ids.values(),
                   other.tenant.stk_kid]
        for response, _ in _reads(client, me):
            assert response.status_code == 200, (response.status_code, response.get_data(as_text=True))
            text = json.dumps(response.get_json(), ensure_ascii=False)
            leaked = [f for f in foreign if f in text]
            assert not leaked, f"{me.name} sees {leaked} of {other.name} in {response.request.path}"


def test_the_property_notices_a_leak(new_app):
    """A read that did show the other tenant's marker must fail the check above."""
    client, (a, b) = _setup(new_app)
    _act(client, b, ("record", 1, "u-1", [("push", True)]))
    history = client.get("/v1/subjects/u-1/history", headers=bearer(b.tenant.reader))
    assert b.marker in json.dumps(history.get_json())  # the marker is what a leak would show
    assert client.get("/v1/subjects/u-1/history", headers=bearer(a.tenant.reader)).status_code == 404
