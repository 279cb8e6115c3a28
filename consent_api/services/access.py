"""Who is calling: a bearer token becomes a Principal, and a Principal is checked for a right."""

from __future__ import annotations

from dataclasses import dataclass, field

from consent_api.config import Settings
from consent_api.domain.clock import Clock
from consent_api.domain.model import Scope
from consent_api.errors import Forbidden, Unauthorized
from consent_api.security import apikeys, tokens
from consent_api.store.port import Store

OPERATOR = "operator"
API_KEY = "api_key"
PUBLISHABLE = "publishable"
SUBJECT = "subject"


@dataclass(frozen=True)
class Principal:
    kind: str
    tenant_id: str | None = None
    credential_id: str | None = None
    scopes: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    subject_id: str | None = None
    extra: dict = field(default_factory=dict)

    def has(self, scope: str) -> bool:
        return self.kind == API_KEY and (Scope.ADMIN in self.scopes or scope in self.scopes)

    def require_scope(self, scope: str) -> str:
        """The tenant id, when this principal holds scope on it; Forbidden otherwise."""
        if not self.has(scope):
            raise Forbidden(f"this credential lacks the scope {scope}")
        assert self.tenant_id is not None
        return self.tenant_id

    def require_subject(self, scope: str, subject_id: str) -> str:
        """Tenant id for a call about one subject: an API key with scope, or that subject's token."""
        if self.kind == SUBJECT:
            if self.subject_id != subject_id:
                raise Forbidden("a subject token reaches only its own subject")
            assert self.tenant_id is not None
            return self.tenant_id
        return self.require_scope(scope)

    def require_operator(self) -> None:
        if self.kind != OPERATOR:
            raise Forbidden("only the operator token can do this")

    def require_publishable(self, origin: str | None) -> str:
        if self.kind != PUBLISHABLE:
            raise Forbidden("this endpoint takes a publishable key (pk_...)")
        if origin is None or origin.lower() not in self.origins:
            raise Forbidden("the request's Origin is not registered for this publishable key")
        assert self.tenant_id is not None
        return self.tenant_id


def authenticate(store: Store, settings: Settings, clock: Clock, token: str | None) -> Principal:
    if not token:
        raise Unauthorized("send Authorization: Bearer <token>")
    if settings.admin_token and apikeys.same_secret(token, settings.admin_token):
        return Principal(OPERATOR)
    if token.startswith((apikeys.SECRET_PREFIX, apikeys.PUBLISHABLE_PREFIX)):
        key = store.find_api_key(apikeys.hash_key(token))
        if key is None or key.revoked_at is not None:
            raise Unauthorized("unknown or revoked API key")
        if key.type == "publishable":
            return Principal(PUBLISHABLE, key.tenant_id, key.id, (), key.origins)
        return Principal(API_KEY, key.tenant_id, key.id, key.scopes)
    if token.count(".") == 2:
        key, claims = tokens.verify_subject_token(
            token, store.find_subject_token_key, clock(),
            max_lifetime_s=settings.subject_token_max_lifetime_s,
            leeway_s=settings.subject_token_leeway_s,
            audience=settings.subject_token_audience,
            passphrase=settings.key_encryption_key,
        )
        return Principal(SUBJECT, key.tenant_id, f"{key.kid}:{claims['sub']}",
                         subject_id=claims["sub"])
    raise Unauthorized("unknown token")
