"""The webhook sender's kept-alive connections (outbound/sender.py), against a real receiver on
127.0.0.1: a receiver's connection carries the next delivery, one the receiver closed meanwhile
costs one more try on a new connection, and every delivery, kept connection or not, resolves
and vets the receiver's address again first."""

from __future__ import annotations

import pytest

from consent_api.outbound import addresses, sender
from consent_api.outbound.addresses import Refused
from tests.support.receiver import receiving

HEADERS = {"Content-Type": "application/json", "webhook-id": "msg_x"}


def host_url(url: str) -> str:
    """The receiver's URL under a host name the test resolves itself."""
    return url.replace("127.0.0.1", "hooks.test")


@pytest.fixture
def resolved():
    """What hooks.test resolves to, changed by the test; every look-up is counted."""
    answer = {"addresses": ["127.0.0.1"], "lookups": 0}

    def resolve(host: str, port: int) -> list[str]:
        assert host == "hooks.test"
        answer["lookups"] += 1
        return list(answer["addresses"])

    return answer, resolve


def test_deliveries_to_one_receiver_share_a_kept_connection(resolved):
    answer, resolve = resolved
    with receiving(keep_alive=True) as receiver:
        out = sender.Sender(True, resolve)
        try:
            statuses = [out.post(host_url(receiver.url), HEADERS, b"{}").status for _ in range(3)]
        finally:
            out.close()
        assert statuses == [204, 204, 204]
        assert len({r.peer for r in receiver.requests}) == 1  # one connection carried all three
        assert answer["lookups"] == 3  # and the address was looked up and vetted for each


def test_a_receiver_that_closes_after_each_answer_gets_a_new_connection_each_time():
    with receiving() as receiver:  # HTTP/1.0: the receiver closes, and says so
        out = sender.Sender(True)
        try:
            assert [out.post(receiver.url, HEADERS, b"{}").status for _ in range(2)] == [204, 204]
        finally:
            out.close()
        assert len({r.peer for r in receiver.requests}) == 2


def test_a_kept_connection_the_receiver_closed_is_tried_once_more_on_a_new_one(resolved):
    _, resolve = resolved
    with receiving(keep_alive=True) as receiver:
        out = sender.Sender(True, resolve)
        try:
            receiver.hang_up = True  # answers, then closes without a Connection: close
            assert out.post(host_url(receiver.url), HEADERS, b"{}").status == 204
            receiver.hang_up = False
            again = out.post(host_url(receiver.url), HEADERS, b"{}")
        finally:
            out.close()
        assert again.status == 204 and again.error is None
        assert len(receiver.requests) == 2  # the closed connection carried nothing
        assert receiver.requests[0].peer != receiver.requests[1].peer


def test_a_kept_connection_is_not_used_once_the_host_resolves_elsewhere(resolved):
    answer, resolve = resolved
    with receiving(keep_alive=True) as receiver:
        out = sender.Sender(True, resolve)
        try:
            assert out.post(host_url(receiver.url), HEADERS, b"{}").status == 204
            answer["addresses"] = ["127.0.0.2"]  # nothing listens there: the kept connection must not be used
            moved = out.post(host_url(receiver.url), HEADERS, b"{}")
        finally:
            out.close()
        assert moved.status is None and moved.error
        assert len(receiver.requests) == 1


def test_an_address_refused_at_delivery_is_refused_on_a_kept_connection_too(resolved, monkeypatch):
    _, resolve = resolved
    checks = []

    def vetting(target, allow_private, resolver):
        checks.append(target.host)
        if len(checks) > 1:  # by now the name points somewhere private, and private is not allowed
            raise Refused("private address")
        return addresses.vetted(target, allow_private, resolver)

    monkeypatch.setattr(sender, "vetted", vetting)
    with receiving(keep_alive=True) as receiver:
        out = sender.Sender(True, resolve)
        try:
            assert out.post(host_url(receiver.url), HEADERS, b"{}").status == 204
            refused = out.post(host_url(receiver.url), HEADERS, b"{}")
        finally:
            out.close()
        assert refused.status is None and refused.error.startswith("refused")
        assert len(receiver.requests) == 1 and checks == ["hooks.test", "hooks.test"]


def test_a_one_off_post_closes_its_connection():
    with receiving(keep_alive=True) as receiver:
        for _ in range(2):
            assert sender.post(receiver.url, HEADERS, b"{}", allow_private=True).status == 204
        assert len({r.peer for r in receiver.requests}) == 2
