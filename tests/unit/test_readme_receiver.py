"""README's Flask receiver, run as written, against a message the delivery worker signed: it
verifies, handles a webhook-id once, and refuses a forged signature."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from consent_api.domain.webhooks import message_body as body
from consent_api.domain.webhooks import new_secret
from consent_api.services.delivery import sign

README = Path(__file__).resolve().parents[2] / "README.md"


def receiver_app(secret: str, stopped: list):
    [code] = [block for block in re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
              if "standardwebhooks" in block and "Flask" in block]
    namespace = {"__name__": "readme_receiver",  # Flask(__name__) needs a module name
                 "stop_processing": lambda subject, purpose: stopped.append((subject, purpose))}
    exec(code.replace('"whsec_..."', repr(secret)), namespace)  # noqa: S102 - the README's own code
    return namespace["app"]


def test_the_readme_receiver_verifies_and_deduplicates():
    secret, stopped = new_secret(), []
    client = receiver_app(secret, stopped).test_client()
    now = datetime.now(timezone.utc)
    text = body("consent.changed", "2026-03-01T08:00:00.000000Z", {
        "tenant_id": "ten_1", "subject_id": "alice", "event": {"purpose": "push", "action": "withdraw"},
        "state": {"purpose": "push", "status": "withdrawn", "allowed": False}}).encode()
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": sign(secret, "msg_1", now, text), "Content-Type": "application/json"}
    assert client.post("/hooks/consent", data=text, headers=headers).status_code == 204
    assert client.post("/hooks/consent", data=text, headers=headers).status_code == 204  # a retry
    assert stopped == [("alice", "push")]
    forged = {**headers, "webhook-id": "msg_2", "webhook-signature": sign(new_secret(), "msg_2", now, text)}
    assert client.post("/hooks/consent", data=text, headers=forged).status_code == 400
