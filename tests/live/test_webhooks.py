"""Webhooks from a real `consent-api serve` (granian workers and the delivery worker it runs) to
a real receiver on 127.0.0.1: signed messages that standardwebhooks verifies, and kill -9 of the
whole server while deliveries are in flight, after which every acknowledged event still
arrives (at least once)."""

from __future__ import annotations

import http.client
import random
import threading
import time

from standardwebhooks.webhooks import Webhook as Verifier

from tests.support import servers
from tests.support.receiver import receiving

ENV = {"CONSENT_WEBHOOK_ALLOW_PRIVATE": "1", "CONSENT_WEBHOOK_LEASE_S": "2", "CONSENT_WEBHOOK_POLL_MS": "50"}


def test_a_decision_arrives_signed_within_seconds(tmp_path):
    with receiving() as receiver, servers.serving(tmp_path, env=ENV) as server:
        tenant = server.api().new_tenant("Live hooks")
        hook = tenant.post("/v1/webhooks", {"url": receiver.url}, expect=201).json
        event = tenant.grant("alice", "push")["events"][0]
        [got] = receiver.wait_for(1)
        payload = Verifier(hook["secret"]).verify(got.body, got.headers)
        assert payload["type"] == "consent.changed" and payload["data"]["event"]["event_id"] == event["event_id"]
        assert payload["data"]["state"]["status"] == "granted"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the outcome is recorded right after the answer
            rows = tenant.get(f"/v1/webhooks/{hook['id']}/deliveries", expect=200).json["items"]
            if rows and rows[0]["status"] == "delivered":
                break
            time.sleep(0.05)
        assert rows[0]["status"] == "delivered" and rows[0]["message_id"] == got.id


def test_every_acknowledged_event_is_delivered_after_kill_9_mid_delivery(tmp_path):
    subjects = [f"k{n}" for n in range(12)]
    with receiving() as receiver:
        slow = threading.Event()

        def trickle(request):  # deliveries take a while, so some are in flight at the kill
            if slow.is_set():
                time.sleep(0.05)
            return None

        receiver.rule = trickle
        slow.set()
        server = servers.serve(tmp_path, env=ENV)
        acknowledged: set[str] = set()
        try:
            tenant = server.api().new_tenant("Crash hooks")
            tenant.post("/v1/webhooks", {"url": receiver.url}, expect=201)
            lock, down = threading.Lock(), threading.Event()

            def writer(n: int) -> None:
                rng = random.Random(n)
                while not down.is_set():
                    body = {"decisions": [{"purpose": "push", "granted": rng.random() < 0.5}],
                            "policy_version": "2026-01", "source": {"channel": "server"}}
                    try:
                        answer = tenant.post(f"/v1/subjects/{rng.choice(subjects)}/consents", body)
                    except (OSError, http.client.HTTPException):
                        return
                    if answer.status_code == 201:
                        with lock:
                            acknowledged.update(e["event_id"] for e in answer.json["events"])

            threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
            for thread in threads:
                thread.start()
            receiver.wait_for(20, timeout_s=60)  # deliveries are flowing
            server.kill()  # the whole process group: API workers and the delivery worker, mid-send
            down.set()
            for thread in threads:
                thread.join(timeout=40)
        finally:
            server.stop()
        assert len(acknowledged) > 20
        slow.clear()

        def arrived() -> set[str]:
            return {r.json["data"]["event"]["event_id"] for r in list(receiver.requests)}

        restarted = servers.serve(tmp_path, database_url=server.database_url, env=ENV)
        try:
            deadline = time.monotonic() + 90
            while not acknowledged <= arrived() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            restarted.stop()
        missing = acknowledged - arrived()
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged events never arrived"
