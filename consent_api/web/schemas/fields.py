"""Field types and shared fields of the request schemas: strings without NUL, strict JSON
booleans and numbers, RFC 3339 timestamps, locales, hashes, URLs, anonymous subject ids."""

from __future__ import annotations

import re

from marshmallow import ValidationError, fields, validate

from consent_api.domain.clock import parse_rfc3339
from consent_api.domain.model import ANONYMOUS_ID


class Str(fields.String):
    """A string without NUL characters: no field of this API holds one, and C libraries and
    log readers end a string at the first. Every string field of a request schema is one."""

    default_error_messages = {"nul": "Must not contain NUL characters."}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        return text


class StrictBoolean(fields.Boolean):
    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not bool:
            raise self.make_error("invalid")
        return value


class StrictFloat(fields.Float):
    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) not in (int, float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictInteger(fields.Integer):
    """A JSON integer, as JSON Schema counts them (6 and 6.0): not a boolean, not 6.5, not "6"."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not (type(value) is int or (type(value) is float and value.is_integer())):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Timestamp(fields.Field):
    """RFC 3339 with an offset, as an aware UTC datetime (marshmallow's ISO parsing is laxer)."""

    default_error_messages = {"invalid": "Not a valid datetime."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            return parse_rfc3339(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


def one_of(enum) -> validate.OneOf:
    return validate.OneOf([str(e) for e in enum])


Text = Str(validate=validate.Length(min=1, max=2000))
Locale = Str(validate=validate.Regexp(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*\Z"))
LocalizedText = fields.Dict(keys=Locale, values=Str(validate=validate.Length(max=4000)))
SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
Sha256 = Str(validate=validate.Regexp(SHA256), allow_none=True)
Url = fields.Url(schemes={"http", "https"}, require_tld=False, allow_none=True)
# The locale a decision was shown in, as the client names it (stored as given).
ShownLocale = Str(allow_none=True, load_default=None, validate=validate.Length(max=35))


def anonymous_id(error: str) -> Str:
    """A browser's first-party subject id (services/public.py), with the message to refuse others."""
    return Str(required=True, validate=validate.Regexp(ANONYMOUS_ID, error=error))
