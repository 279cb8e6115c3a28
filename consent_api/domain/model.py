"""The consent vocabulary: catalog entries, events, and the per-subject projection.

Catalog entries are frozen dataclasses. Events stay plain dicts in exactly the shape the
audit export prints (``EVENT_FIELDS``), because that shape is what the hash chain covers.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from consent_api.domain.clock import format_ts, parse_ts

# \Z, not $: Python's $ also matches before a trailing newline, so "push\n" would pass.
PURPOSE_KEY = re.compile(r"^[a-z][a-z0-9_.-]{0,63}\Z")
# "." and ".." are left out: clients remove them from URL paths as dot segments (RFC 3986
# 5.2.4), so such a subject or version could be written (percent-encoded) but never read back.
POLICY_VERSION = re.compile(r"^(?!\.{1,2}\Z)[A-Za-z0-9._-]{1,64}\Z")
SUBJECT_ID = re.compile(r"^(?!\.{1,2}\Z)[A-Za-z0-9._:@+-]{1,128}\Z")
# A web visitor's first-party subject id (client_js makes them): the prefix, then subject-id characters.
ANONYMOUS_PREFIX = "anon-"
ANONYMOUS_ID = re.compile(r"^anon-[A-Za-z0-9._:@+-]{1,123}\Z")
DEFAULT_REPROMPT_HOURS = 48.0


class Kind(StrEnum):
    DEVICE_PERMISSION = "device_permission"
    PROCESSING = "processing"
    MARKETING = "marketing"
    COOKIE = "cookie"
    THIRD_PARTY = "third_party"
    CROSS_BORDER = "cross_border"


class Action(StrEnum):
    GRANT = "grant"
    DENY = "deny"
    WITHDRAW = "withdraw"
    PROMPT = "prompt"
    ERASE = "erase"


class Status(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    RECONSENT_REQUIRED = "reconsent_required"
    NOT_ASKED = "not_asked"


class AgeBand(StrEnum):
    UNDER_14 = "under_14"
    TEEN = "14_17"
    ADULT = "adult"
    UNKNOWN = "unknown"


class Channel(StrEnum):
    WEB = "web"
    IOS = "ios"
    ANDROID = "android"
    HARMONYOS = "harmonyos"
    MINIPROGRAM = "miniprogram"
    SERVER = "server"
    IMPORT = "import"


class ActorType(StrEnum):
    SELF = "self"
    GUARDIAN = "guardian"
    AGENT = "agent"


class OsPermission(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    RESTRICTED = "restricted"
    NOT_DETERMINED = "not_determined"


class Scope(StrEnum):
    ADMIN = "admin"
    WRITE = "consents:write"
    READ = "consents:read"
    AUDIT = "audit:read"


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class ApiKey:
    """A tenant credential; only ``key_hash`` of the secret is ever stored."""

    id: str
    tenant_id: str
    name: str
    type: str  # "secret" | "publishable"
    scopes: tuple[str, ...]
    origins: tuple[str, ...]
    key_hash: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None

    def grants(self, scope: str) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


@dataclass(frozen=True)
class SubjectTokenKey:
    """A key the tenant's backend signs subject tokens with (HS256 secret or a public key)."""

    kid: str
    tenant_id: str
    alg: str
    material: str  # HS256: the shared secret; otherwise the public key as PEM
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Purpose:
    key: str
    kind: Kind
    title: dict[str, str]
    description: dict[str, str] = field(default_factory=dict)
    sensitive: bool = False
    essential: bool = False
    validity_days: float | None = None
    reprompt_after_hours: float = DEFAULT_REPROMPT_HOURS
    vendors: tuple[str, ...] = ()
    consent_mode: tuple[str, ...] = ()
    archived: bool = False

    @property
    def needs_separate(self) -> bool:
        """Sensitive data and cross-border transfer need their own, separate consent."""
        return self.sensitive or self.kind == Kind.CROSS_BORDER

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = str(self.kind)
        data["vendors"] = list(self.vendors)
        data["consent_mode"] = list(self.consent_mode)
        data["sensitive"] = self.needs_separate
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Purpose:
        return cls(
            key=data["key"],
            kind=Kind(data["kind"]),
            title=dict(data.get("title") or {}),
            description=dict(data.get("description") or {}),
            sensitive=bool(data.get("sensitive", False)),
            essential=bool(data.get("essential", False)),
            validity_days=data.get("validity_days"),
            reprompt_after_hours=float(data.get("reprompt_after_hours", DEFAULT_REPROMPT_HOURS)),
            vendors=tuple(data.get("vendors") or ()),
            consent_mode=tuple(data.get("consent_mode") or ()),
            archived=bool(data.get("archived", False)),
        )


@dataclass(frozen=True)
class PolicyVersion:
    version: str
    effective_at: datetime
    url: str | None = None
    sha256: str | None = None
    material: bool = False
    summary: dict[str, str] = field(default_factory=dict)
    published_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "effective_at": format_ts(self.effective_at),
            "url": self.url,
            "sha256": self.sha256,
            "material": self.material,
            "summary": dict(self.summary),
            "published_at": format_ts(self.published_at) if self.published_at else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyVersion:
        return cls(
            version=data["version"],
            effective_at=parse_ts(data["effective_at"]),
            url=data.get("url"),
            sha256=data.get("sha256"),
            material=bool(data.get("material", False)),
            summary=dict(data.get("summary") or {}),
            published_at=parse_ts(data["published_at"]) if data.get("published_at") else None,
        )


@dataclass(frozen=True)
class Vendor:
    key: str
    name: str
    company: str
    data_collected: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    scenario: str = ""
    privacy_policy_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["data_collected"] = list(self.data_collected)
        data["purposes"] = list(self.purposes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vendor:
        return cls(
            key=data["key"],
            name=data["name"],
            company=data["company"],
            data_collected=tuple(data.get("data_collected") or ()),
            purposes=tuple(data.get("purposes") or ()),
            scenario=data.get("scenario") or "",
            privacy_policy_url=data.get("privacy_policy_url"),
        )


# Every field of an event, in the shape /v1/audit/events exports. The hash chain covers all of
# them except ``hash`` itself and ``subject_id`` (which erasure removes).
EVENT_FIELDS = (
    "event_id", "tenant_id", "subject_id", "subject_ref", "seq", "purpose", "action",
    "policy_version", "occurred_at", "recorded_at", "source", "locale", "separate", "actor",
    "age_band", "os_permission", "evidence", "idempotency_key", "prev_hash", "hash",
)


@dataclass(frozen=True)
class PurposeRecord:
    """What the ledger says about one purpose of one subject (the projection's unit)."""

    action: str | None = None  # last decision: grant | deny | withdraw
    decided_at: str | None = None  # recorded_at of that decision
    policy_version: str | None = None
    event_id: str | None = None
    prompted_at: str | None = None  # recorded_at of the last prompt
    os_permission: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: this runs for every purpose of every write (asdict is ~20x slower).
        return {k: v for k, v in (("action", self.action), ("decided_at", self.decided_at),
                                  ("policy_version", self.policy_version), ("event_id", self.event_id),
                                  ("prompted_at", self.prompted_at), ("os_permission", self.os_permission))
                if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PurposeRecord:
        return cls(**data)


@dataclass(frozen=True)
class SubjectRecord:
    """The current projection of a subject's events; rebuildable from the ledger at any time."""

    subject_id: str
    subject_ref: str
    seq: int = 0
    head_hash: str = "0" * 64
    age_band: str | None = None
    purposes: dict[str, PurposeRecord] = field(default_factory=dict)
    updated_at: str | None = None

    def with_changes(self, **changes: Any) -> SubjectRecord:
        return replace(self, **changes)

    def purposes_json(self) -> dict[str, dict[str, Any]]:
        return {key: rec.to_dict() for key, rec in self.purposes.items()}

    @staticmethod
    def purposes_from_json(data: dict[str, dict[str, Any]]) -> dict[str, PurposeRecord]:
        return {key: PurposeRecord.from_dict(rec) for key, rec in data.items()}


class PageKind(StrEnum):
    """The server-rendered page sets, each with its own session cookie (web/pages/)."""

    PRIVACY = "privacy"  # the privacy center: one end user, bound to one subject
    CONSOLE = "console"  # the console: a tenant's staff, with an API key's scopes


@dataclass(frozen=True)
class PageSession:
    """A signed-in browser of a page set. The cookie holds a random token; only its sha256
    (``token_hash``) is stored. ``tenant_id`` is None for a session that has no identity yet
    (a sign-in form's CSRF token and locale live in one)."""

    token_hash: str
    kind: str
    csrf: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # the absolute end; idle expiry is counted from last_seen_at
    tenant_id: str | None = None
    subject_id: str | None = None  # privacy center: the one subject it shows
    key_id: str | None = None  # console: the API key it signed in with
    scopes: tuple[str, ...] = ()
    locale: str | None = None


@dataclass(frozen=True)
class LinkCode:
    """A one-time code that opens a privacy-center session for one subject; stored hashed."""

    code_hash: str
    tenant_id: str
    subject_id: str
    created_at: datetime
    expires_at: datetime
