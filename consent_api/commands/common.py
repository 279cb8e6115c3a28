"""What every command shares: the store and services CONSENT_DATABASE_URL names, and output
fit for a terminal."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from consent_api.config import Settings, deps_for
from consent_api.domain.clock import system_clock

if TYPE_CHECKING:
    from consent_api.services.deps import Deps
    from consent_api.store.port import Store


def store_of(settings: Settings, url: str | None = None) -> Store:
    from consent_api.store.open import MongoOptions, open_store

    return open_store(url or settings.database_url, MongoOptions(**settings.mongo_options()))


def deps_of(settings: Settings, store: Store | None = None) -> Deps:
    return deps_for(settings, store or store_of(settings), system_clock)


def shown(url: str) -> str:
    """A database URL fit for a terminal: the password replaced."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def print_json(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))
