"""Sessions of the server-rendered page sets (the privacy center, the console).

The browser holds a random token (``secrets.token_urlsafe(32)``); the store keeps only its
sha256, so a copy of the store opens no session. A session ends at the first of: its idle
timeout (counted from the last request), its absolute lifetime, or sign-out, which deletes it
on the server so a replayed cookie opens nothing. Signing in always starts a new session
(``rotate``): a token planted before sign-in never becomes an identity.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from consent_api.domain.model import PageSession
from consent_api.services.deps import Deps

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 256  # a cookie value longer than any token we issue is not looked up
TOUCH_EVERY = timedelta(seconds=15)  # activity is written at most this often per session


@dataclass(frozen=True)
class SessionRules:
    """How long a kind of session lasts."""

    idle: timedelta = timedelta(minutes=30)
    lifetime: timedelta = timedelta(hours=8)


@dataclass(frozen=True)
class Started:
    """A new session and the token its cookie carries (shown only now)."""

    token: str
    session: PageSession


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(deps: Deps, kind: str, rules: SessionRules, *, tenant_id: str | None = None,
          subject_id: str | None = None, key_id: str | None = None, scopes: tuple[str, ...] = (),
          locale: str | None = None) -> Started:
    """A new session of this kind; without tenant_id it has no identity yet (a sign-in form's)."""
    now = deps.clock()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session = PageSession(
        token_hash=token_hash(token), kind=kind, csrf=secrets.token_urlsafe(TOKEN_BYTES),
        created_at=now, last_seen_at=now, expires_at=now + rules.lifetime, tenant_id=tenant_id,
        subject_id=subject_id, key_id=key_id, scopes=tuple(scopes), locale=locale)
    deps.store.put_session(session)
    return Started(token, session)


def resume(deps: Deps, kind: str, rules: SessionRules, token: str | None) -> PageSession | None:
    """The live session of this kind that token opens; None (and an expired one deleted) otherwise."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    found = deps.store.get_session(token_hash(token))
    if found is None or found.kind != kind:
        return None
    now = deps.clock()
    if now >= found.expires_at or now >= found.last_seen_at + rules.idle:
        deps.store.delete_session(found.token_hash)
        return None
    return found


def touch(deps: Deps, session: PageSession, locale: str | None = None) -> PageSession:
    """Note activity (the idle timeout starts again) and remember a chosen locale."""
    now = deps.clock()
    changed_locale = locale is not None and locale != session.locale
    if not changed_locale and now - session.last_seen_at < TOUCH_EVERY:
        return session
    deps.store.touch_session(session.token_hash, now, locale if changed_locale else None)
    return replace(session, last_seen_at=now, locale=locale if changed_locale else session.locale)


def rotate(deps: Deps, kind: str, rules: SessionRules, old: PageSession | None, *, tenant_id: str,
           subject_id: str | None = None, key_id: str | None = None, scopes: tuple[str, ...] = (),
           locale: str | None = None) -> Started:
    """Sign in: end the browser's current session (if any) and start one with this identity,
    keeping the locale it had chosen."""
    if old is not None:
        deps.store.delete_session(old.token_hash)
    kept_locale = locale or (old.locale if old is not None else None)
    return start(deps, kind, rules, tenant_id=tenant_id, subject_id=subject_id, key_id=key_id,
                 scopes=scopes, locale=kept_locale)


def end(deps: Deps, session: PageSession) -> None:
    """Sign out: the session is gone on the server, whatever the browser keeps."""
    deps.store.delete_session(session.token_hash)


def csrf_matches(session: PageSession | None, sent: str | None) -> bool:
    """Does a form's csrf_token equal its session's, compared in constant time?"""
    if session is None or not sent:
        return False
    return hmac.compare_digest(session.csrf.encode("utf-8"), sent.encode("utf-8", "replace"))
