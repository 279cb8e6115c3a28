"""Writers racing on one subject: every acknowledged event lands once, in one gap-free chain."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from consent_api.domain.ledger import verify_chain
from consent_api.domain.projection import project
from tests.store.drafts import draft, plan_of

WRITERS = 8
ROUNDS = 5


@pytest.fixture
def busy_scheduler() -> Iterator[None]:
    """Switch threads every few bytecodes, so in-process writers interleave between operations."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_concurrent_appends_to_one_subject_keep_one_gap_free_chain(store, busy_scheduler):
    def race(round_no: int) -> list:
        start = threading.Barrier(WRITERS)

        def write(n: int):
            # two events per writer, so another writer's events can split a batch
            tag = f"{round_no}_{n}"
            plan = plan_of(draft(f"p{tag}a", event_id=f"ev_{tag}a", minutes=round_no),
                           draft(f"p{tag}b", "deny", event_id=f"ev_{tag}b", minutes=round_no))
            start.wait()
            return store.append("t1", "u1", plan)

        with ThreadPoolExecutor(WRITERS) as pool:
            return list(pool.map(write, range(WRITERS)))

    # the first round also races to create the subject
    results = [result for round_no in range(ROUNDS) for result in race(round_no)]

    record = store.get_subject("t1", "u1")
    events = store.subject_events("t1", record.subject_ref)
    total = 2 * WRITERS * ROUNDS
    assert [e["seq"] for e in events] == list(range(1, total + 1))
    assert verify_chain(events) == (total, None)
    assert {r.record.subject_ref for r in results} == {record.subject_ref}
    stored = {e["event_id"]: e for e in events}
    for result in results:
        assert len(result.events) == 2
        for event in result.events:
            assert stored[event["event_id"]] == {k: v for k, v in event.items() if k != "subject_id"}
    assert record == project("u1", record.subject_ref, events)
