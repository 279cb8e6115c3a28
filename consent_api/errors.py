"""The one exception family of consent_api.

    ConsentApiError                 status 500, "Internal error"
     +-- BadRequest                 400, malformed request (not JSON, bad header)
     +-- Unauthorized               401, missing, unknown, revoked or expired credentials
     +-- Forbidden                  403, valid credentials without the right to this
     +-- NotFound                   404, unknown resource (or another tenant's)
     +-- Conflict                   409, duplicate version, idempotency key reused
     +-- Gone                       410, a one-time link already used or expired
     +-- PayloadTooLarge            413
     +-- Invalid                    422, validation or rule failure; carries errors {field: [messages]}
     +-- TooManyRequests            429, over the rate limit; carries Retry-After in headers
     +-- Unavailable                503, the store cannot be reached

Services and stores raise these; only ``web/problems.py`` turns them into HTTP.
"""

from __future__ import annotations


class ConsentApiError(Exception):
    status = 500
    title = "Internal error"
    type_slug = "internal"

    def __init__(self, detail: str | None = None, *, errors: dict[str, list[str]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}  # extra response headers, e.g. Retry-After


class BadRequest(ConsentApiError):
    status = 400
    title = "Bad request"
    type_slug = "bad-request"


class Unauthorized(ConsentApiError):
    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"


class Forbidden(ConsentApiError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class NotFound(ConsentApiError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(ConsentApiError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class Gone(ConsentApiError):
    status = 410
    title = "Gone"
    type_slug = "gone"


class PayloadTooLarge(ConsentApiError):
    status = 413
    title = "Payload too large"
    type_slug = "payload-too-large"


class UnsupportedMediaType(ConsentApiError):
    status = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


class Invalid(ConsentApiError):
    status = 422
    title = "Validation failed"
    type_slug = "validation"

    @classmethod
    def field(cls, field: str, message: str) -> Invalid:
        """A rule failure pinned to one request field; the detail repeats the message."""
        return cls(message, errors={field: [message]})


class TooManyRequests(ConsentApiError):
    status = 429
    title = "Too many requests"
    type_slug = "rate-limited"


class Unavailable(ConsentApiError):
    status = 503
    title = "Service unavailable"
    type_slug = "unavailable"
