"""What one endpoint is owed and not sending now, kept in memory between the delivery worker's
rounds (services/delivery.py): its pending messages in delivery order, as far as MEMORY holds
them; the worker reads them from the store PENDING_SCAN at a time and keeps them up to date as
it records messages and outcomes."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime

from consent_api.store.delivery import Message

PENDING_SCAN = 256  # pending messages read per endpoint at a time; memory holds up to MEMORY of them
MEMORY = 2048

Key = tuple[str, str]  # (tenant id, webhook id)


@dataclass
class EndpointQueue:
    """Pending messages in delivery order. ``horizon``: the (order, id) of the last message read
    from the store when it held more than was read (messages past it may exist there, unread, so
    nothing past it is sent before the next read); None when memory holds all of them."""

    messages: dict[str, Message] = field(default_factory=dict)
    keys: list[tuple[int, str]] = field(default_factory=list)  # sorted (order, id) of messages
    horizon: tuple[int, str] | None = None
    stale: bool = True  # read again from the store before the next dispatch
    idle_until: datetime | None = None  # nothing can be sent before this (all blocked or not due)

    def put(self, message: Message) -> None:
        key = (message.order, message.id)
        if self.horizon is not None and key > self.horizon:
            return  # beyond what was read in order: the next read brings it
        if message.id not in self.messages:
            bisect.insort(self.keys, key)
        self.messages[message.id] = message
        self.idle_until = None
        if len(self.keys) > MEMORY:  # keep the oldest; the rest stays in the store for later reads
            dropped = self.keys.pop()
            del self.messages[dropped[1]]
            self.horizon = self.keys[-1]

    def take(self, message_id: str) -> None:
        message = self.messages.pop(message_id)
        del self.keys[bisect.bisect_left(self.keys, (message.order, message.id))]

    def load(self, found: list[Message], flying: set[str]) -> None:
        self.messages = {m.id: m for m in found if m.id not in flying}
        self.keys = sorted((m.order, m.id) for m in self.messages.values())
        self.horizon = (found[-1].order, found[-1].id) if len(found) >= PENDING_SCAN else None
        self.stale = False
        self.idle_until = None

    def needs_read(self) -> bool:
        """Read from the store before the next dispatch: marked stale, or running low on what
        was read while the store holds more."""
        return self.stale or (self.horizon is not None and len(self.keys) < PENDING_SCAN // 4)
