"""Replays every row of docs/rules.md against the services with a fixed clock."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from consent_api.domain.clock import FixedClock, parse_ts
from consent_api.security.signing_keys import KeyRing
from consent_api.services import catalog, consents, tenants
from consent_api.services.consents import Decision, Submission
from consent_api.services.deps import Deps
from consent_api.store.sqlite import SQLiteStore

RULES = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
T0 = parse_ts("2026-03-02T00:00:00Z")


def rows():
    for line in RULES.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[0].isdigit():
            yield pytest.param(*cells[1:8], id=f"row-{cells[0]}")


def purpose_setup(spec: str) -> dict:
    body = {"kind": "processing", "title": {"en": "Personalised push"}}
    if spec == "essential":
        body["essential"] = True
    elif m := re.fullmatch(r"validity=(\d+)d", spec):
        body["validity_days"] = float(m.group(1))
    elif m := re.fullmatch(r"reprompt=(\d+)h", spec):
        body["reprompt_after_hours"] = float(m.group(1))
    else:
        assert spec == "plain", spec
    return body


def test_the_table_has_rows():
    assert len(list(rows())) >= 20


@pytest.mark.parametrize("purpose, steps, at, status, allowed, can_prompt, next_prompt_at", list(rows()))
def test_rule(purpose, steps, at, status, allowed, can_prompt, next_prompt_at):
    clock = FixedClock(T0 - timedelta(hours=1000))
    store = SQLiteStore(":memory:")
    deps = Deps(store, clock, KeyRing(store, clock))
    tenant, _ = tenants.create_tenant(deps, "Rules")
    catalog.put_purpose(deps, tenant.id, "push", purpose_setup(purpose))
    catalog.publish_policy(deps, tenant.id, {"version": "v1", "effective_at": clock()})
    parsed = [] if steps == "-" else [s.strip().split("@") for s in steps.split(",")]
    for n, (what, when) in enumerate(parsed):
        if what in ("material", "minor"):
            catalog.publish_policy(deps, tenant.id, {
                "version": f"v{n + 2}", "material": what == "material",
                "effective_at": T0 + timedelta(hours=float(when.rstrip("h")))})
    for what, when in parsed:
        clock.now = T0 + timedelta(hours=float(when.rstrip("h")))
        current = max((p for p in store.list_policies(tenant.id) if p.effective_at <= clock.now),
                      key=lambda p: p.effective_at).version
        if what in ("grant", "refuse"):
            consents.record(deps, tenant.id, "u1", Submission(
                [Decision("push", what == "grant")], current, {"channel": "ios"}))
        elif what == "prompt":
            consents.record_prompts(deps, tenant.id, "u1", ["push"], {"channel": "ios"}, None, {})
    clock.now = T0 + timedelta(hours=float(at))
    if store.get_subject(tenant.id, "u1") is None:  # never touched: state of a fresh subject
        consents.record_prompts(deps, tenant.id, "other", ["push"], {"channel": "ios"}, None, {})
        from consent_api.domain.status import Policies, purpose_state

        state = purpose_state(store.get_purpose(tenant.id, "push"), None,
                              Policies(store.list_policies(tenant.id)), clock.now)
    else:
        state = consents.state(deps, tenant.id, "u1").purposes["push"]
    expected_next = None if next_prompt_at == "-" else T0 + timedelta(hours=float(next_prompt_at))
    assert (str(state.status), state.allowed, state.can_prompt) == (
        status, allowed == "true", can_prompt == "true")
    assert (parse_ts(state.next_prompt_at) if state.next_prompt_at else None) == expected_next
