"""Who is calling: a bearer token becomes a Principal, and a Principal is checked for a right."""

from __future__ import annotations

from dataclasses import dataclass, field

from consent_api.domain.model import Scope
from consent_api.errors import Forbidden, Unauthorized
from consent_api.security import apikeys, tokens
from consent_api.services.deps import Deps

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


def authenticate(deps: Deps, token: str | None) -> Principal:
    if not token:
        raise Unauthorized("send Authorization: Bearer <token>")
    rules = deps.auth
    if rules.admin_token and apikeys.same_secret(token, rules.admin_token):
        return Principal(OPERATOR)
    if token.startswith((apikeys.SECRET_PREFIX, apikeys.PUBLISHABLE_PREFIX)):
        api_key = deps.store.find_api_key(apikeys.hash_key(token))
        if api_key is None or api_key.revoked_at is not None:
            raise Unauthorized("unknown or revoked API key")
        if api_key.type == "publishable":
            return Principal(PUBLISHABLE, api_key.tenant_id, api_key.id, (), api_key.origins)
        return Principal(API_KEY, api_key.tenant_id, api_key.id, api_key.scopes)
    if token.count(".") == 2:
        signer, claims = tokens.verify_subject_token(
            token, deps.store.find_subject_token_key, deps.clock(),
            max_lifetime_s=rules.subject_token_max_lifetime_s,
            leeway_s=rules.subject_token_leeway_s,
            audience=rules.subject_token_audience,
            passphrase=deps.key_encryption_key,
        )
        return Principal(SUBJECT, signer.tenant_id, f"{signer.kid}:{claims['sub']}",
                         subject_id=claims["sub"])
    raise Unauthorized("unknown token")
