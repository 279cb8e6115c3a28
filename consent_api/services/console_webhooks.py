"""The console's webhook pages without Flask: each endpoint with how far behind it is and its
last attempt, and a replay from a time. Every change goes through services/webhooks.py, the
service behind /v1/webhooks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consent_api.domain.webhooks import DELIVERED, FAILED
from consent_api.errors import Invalid
from consent_api.services import changes, webhooks
from consent_api.services.deps import Deps
from consent_api.store.delivery import Attempt, Webhook


@dataclass(frozen=True)
class Endpoint:
    webhook: Webhook
    lag_s: float  # age of the oldest event not yet delivered (0: up to date)
    last: Attempt | None  # the newest attempt made, delivered or failed


def endpoints(deps: Deps, tenant_id: str) -> list[Endpoint]:
    """Every endpoint of the tenant (at most webhooks.MAX_WEBHOOKS), by id."""
    now = deps.clock()
    found = webhooks.list_webhooks(deps, tenant_id, None, webhooks.MAX_WEBHOOKS).items
    return [Endpoint(w, webhooks.lag(deps, w, now), last_attempt(deps, tenant_id, w.id)) for w in found]


def endpoint(deps: Deps, tenant_id: str, webhook_id: str) -> Endpoint:
    """One endpoint (NotFound for another tenant's or an unknown id)."""
    webhook = webhooks.get(deps, tenant_id, webhook_id)
    return Endpoint(webhook, webhooks.lag(deps, webhook, deps.clock()), last_attempt(deps, tenant_id, webhook_id))


def last_attempt(deps: Deps, tenant_id: str, webhook_id: str) -> Attempt | None:
    made = [row for status in (DELIVERED, FAILED)
            for row in deps.store.list_attempts(tenant_id, webhook_id, status, None, 1)]
    return max(made, key=lambda row: row.created_at, default=None)


def replay_since(deps: Deps, tenant_id: str, webhook_id: str, since: datetime | None) -> tuple[str, str]:
    """Send again every event recorded at or after since that the endpoint's filters take
    (webhooks.replay from the matching change-feed position)."""
    if since is None:
        raise Invalid.field("since", "say from when to send the events again")
    if since > deps.clock():
        raise Invalid.field("since", "a time in the future: nothing was recorded after it yet")
    webhooks.get(deps, tenant_id, webhook_id)
    position = changes.position_at(deps, tenant_id, since)
    return webhooks.replay(deps, tenant_id, webhook_id, changes.encode_position(tenant_id, position))
