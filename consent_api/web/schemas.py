"""Request schemas (``...In``) validate and parse; response shapers (``..._out``) serialise.

Input is strict: unknown fields are refused, booleans must be JSON booleans, numbers must be
JSON numbers. Responses are shaped by plain functions because the read path is hot.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from consent_api.domain.clock import format_ts, parse_rfc3339
from consent_api.domain.model import (
    POLICY_VERSION,
    PURPOSE_KEY,
    ActorType,
    AgeBand,
    ApiKey,
    Channel,
    Kind,
    OsPermission,
    PolicyVersion,
    Purpose,
    Scope,
    SubjectTokenKey,
    Vendor,
)
from consent_api.domain.status import PurposeState, SubjectState
from consent_api.errors import Invalid
from consent_api.services.catalog import CONSENT_MODE_SIGNALS
from consent_api.services.pages import Page


class Str(fields.String):
    """A string without NUL characters: no field of this API holds one, and C libraries and
    log readers end a string at the first."""

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


def _one_of(enum) -> validate.OneOf:
    return validate.OneOf([str(e) for e in enum])


Text = Str(validate=validate.Length(min=1, max=2000))
Locale = Str(validate=validate.Regexp(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*\Z"))
LocalizedText = fields.Dict(keys=Locale, values=Str(validate=validate.Length(max=4000)))
Sha256 = Str(validate=validate.Regexp(r"^[0-9a-f]{64}\Z"), allow_none=True)
Url = fields.Url(schemes={"http", "https"}, require_tld=False, allow_none=True)


class TenantIn(Schema):
    name = Str(required=True, validate=validate.Length(min=1, max=200))


class KeyIn(Schema):
    name = Str(required=True, validate=validate.Length(min=1, max=200))
    type = Str(load_default="secret", validate=validate.OneOf(["secret", "publishable"]))
    scopes = fields.List(Str(validate=_one_of(Scope)), load_default=list,
                         validate=validate.Length(max=10))
    origins = fields.List(Str(validate=validate.Length(min=1, max=300)), load_default=list,
                          validate=validate.Length(max=50))


class SubjectTokenKeyIn(Schema):
    alg = Str(required=True, validate=validate.OneOf(["HS256", "RS256", "ES256", "EdDSA"]))
    public_key = fields.Raw(load_default=None, allow_none=True)

    @validates_schema
    def _public_key_shape(self, data, **kwargs):
        key = data.get("public_key")
        if key is not None and not isinstance(key, (str, dict)):
            raise ValidationError("a PEM string or a JWK object", "public_key")
        if isinstance(key, str) and len(key) > 20000:
            raise ValidationError("too long", "public_key")


class PurposeIn(Schema):
    kind = Str(required=True, validate=_one_of(Kind))
    title = fields.Dict(keys=Locale, values=Str(validate=validate.Length(min=1, max=300)),
                        required=True, validate=validate.Length(min=1))
    description = LocalizedText
    sensitive = StrictBoolean(load_default=False)
    essential = StrictBoolean(load_default=False)
    validity_days = StrictFloat(allow_none=True, load_default=None,
                                validate=validate.Range(min=0, min_inclusive=False, max=36500))
    reprompt_after_hours = StrictFloat(load_default=48.0, validate=validate.Range(min=0, max=87600))
    vendors = fields.List(Str(validate=validate.Regexp(PURPOSE_KEY)), load_default=list,
                          validate=validate.Length(max=200))
    consent_mode = fields.List(Str(validate=validate.OneOf(CONSENT_MODE_SIGNALS)),
                               load_default=list)
    archived = StrictBoolean(load_default=False)


class PolicyIn(Schema):
    version = Str(required=True, validate=validate.Regexp(POLICY_VERSION))
    effective_at = Timestamp(load_default=None, allow_none=True)
    url = Url
    sha256 = Sha256
    material = StrictBoolean(load_default=False)
    summary = LocalizedText


class VendorIn(Schema):
    name = Str(required=True, validate=validate.Length(min=1, max=200))
    company = Str(required=True, validate=validate.Length(min=1, max=300))
    data_collected = fields.List(Str(validate=validate.Length(min=1, max=300)),
                                 load_default=list, validate=validate.Length(max=100))
    purposes = fields.List(Str(validate=validate.Regexp(PURPOSE_KEY)), load_default=list,
                           validate=validate.Length(max=100))
    scenario = Str(load_default="", validate=validate.Length(max=2000))
    privacy_policy_url = Url


class SourceIn(Schema):
    channel = Str(required=True, validate=_one_of(Channel))
    collection_point = Str(allow_none=True, validate=validate.Length(max=200))
    ui_text_sha256 = Sha256
    sdk_version = Str(allow_none=True, validate=validate.Length(max=64))


class ActorIn(Schema):
    type = Str(load_default=str(ActorType.SELF), validate=_one_of(ActorType))
    id = Str(allow_none=True, validate=validate.Length(min=1, max=200))
    reason = Str(allow_none=True, validate=validate.Length(max=500))


def _each_purpose_once(data: dict) -> None:
    seen = set()
    for i, d in enumerate(data.get("decisions") or []):
        if d["purpose"] in seen:
            raise ValidationError({"decisions": {i: {"purpose": [f"{d['purpose']!r} appears twice"]}}})
        seen.add(d["purpose"])


class DecisionIn(Schema):
    purpose = Str(required=True, validate=validate.Regexp(PURPOSE_KEY))
    granted = StrictBoolean(required=True)
    separate = StrictBoolean(load_default=False)
    os_permission = Str(allow_none=True, load_default=None, validate=_one_of(OsPermission))


class DecisionsIn(Schema):
    decisions = fields.List(fields.Nested(DecisionIn), required=True,
                            validate=validate.Length(min=1, max=100))
    policy_version = Str(required=True, validate=validate.Regexp(POLICY_VERSION))
    source = fields.Nested(SourceIn, required=True)
    locale = Str(allow_none=True, load_default=None, validate=validate.Length(max=35))
    actor = fields.Nested(ActorIn, allow_none=True, load_default=None)
    age_band = Str(allow_none=True, load_default=None, validate=_one_of(AgeBand))
    occurred_at = Timestamp(allow_none=True, load_default=None)

    _no_purpose_twice = validates_schema(lambda self, data, **kw: _each_purpose_once(data))


class WithdrawAllIn(Schema):
    source = fields.Nested(SourceIn, required=True)
    locale = Str(allow_none=True, load_default=None, validate=validate.Length(max=35))


class LinkIn(Schema):
    anonymous_subject_id = Str(required=True, validate=validate.Regexp(
        r"^anon-[A-Za-z0-9._:@+-]{1,123}\Z", error="an anonymous web subject id: anon- followed by "
                                                   "letters, digits or ._:@+-"))


class PromptsIn(Schema):
    purposes = fields.List(Str(validate=validate.Regexp(PURPOSE_KEY)), required=True,
                           validate=validate.Length(min=1, max=100))
    source = fields.Nested(SourceIn, required=True)
    locale = Str(allow_none=True, load_default=None, validate=validate.Length(max=35))
    os_permissions = fields.Dict(keys=Str(validate=validate.Regexp(PURPOSE_KEY)),
                                 values=Str(validate=_one_of(OsPermission)),
                                 load_default=dict)


class PublicDecisionIn(Schema):
    purpose = Str(required=True, validate=validate.Regexp(PURPOSE_KEY))
    granted = StrictBoolean(required=True)


class PublicConsentsIn(Schema):
    subject_id = Str(required=True, validate=validate.Regexp(r"^anon-[A-Za-z0-9._:@+-]{1,123}\Z",
                               error="an anonymous id: anon- followed by letters, digits or ._:@+-"))
    decisions = fields.List(fields.Nested(PublicDecisionIn), required=True,
                            validate=validate.Length(min=1, max=100))
    policy_version = Str(required=True, validate=validate.Regexp(POLICY_VERSION))
    locale = Str(allow_none=True, load_default=None, validate=validate.Length(max=35))
    gpc = StrictBoolean(load_default=False)

    _no_purpose_twice = validates_schema(lambda self, data, **kw: _each_purpose_once(data))


class ChecksIn(Schema):
    purpose = Str(required=True, validate=validate.Regexp(PURPOSE_KEY))
    subject_ids = fields.List(Str(validate=validate.Length(min=1, max=128)), required=True,
                              validate=validate.Length(min=1, max=1000))


_INSTANCES: dict[type[Schema], Schema] = {}


def load(schema: Schema | type[Schema], data: Any) -> dict[str, Any]:
    """Validate a request document; 422 with {field: [messages]} on failure. Pass the class on
    hot paths: its one shared instance is reused (building a schema deep-copies its fields and
    nested schemas, which cost more than the validation of a decision itself)."""
    if isinstance(schema, type):
        schema = _INSTANCES.get(schema) or _INSTANCES.setdefault(schema, schema())
    try:
        return schema.load(data)
    except ValidationError as exc:
        errors = flatten(exc.messages)
        raise Invalid("the request has invalid fields: " + ", ".join(sorted(errors)),
                      errors=errors) from exc


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            return {prefix or "_body": messages}
        flat: dict[str, list[str]] = {}
        for m in messages:
            for k, v in flatten(m, prefix).items():
                flat.setdefault(k, []).extend(v)
        return flat
    if isinstance(messages, dict):
        flat = {}
        for key, value in messages.items():
            name = "_body" if key == "_schema" and not prefix else (
                prefix if key == "_schema" else f"{prefix}.{key}" if prefix else str(key))
            for k, v in flatten(value, name).items():
                flat.setdefault(k, []).extend(v)
        return flat
    return {prefix or "_body": [str(messages)]}


# --- responses -------------------------------------------------------------------------------

def page_out(page: Page, shape=lambda item: item) -> dict[str, Any]:
    return {"items": [shape(item) for item in page.items], "next_cursor": page.next_cursor}


def key_out(key: ApiKey, secret: str | None = None) -> dict[str, Any]:
    body = {
        "id": key.id, "name": key.name, "type": key.type, "scopes": list(key.scopes),
        "origins": list(key.origins), "prefix": key.prefix, "created_at": format_ts(key.created_at),
        "revoked_at": format_ts(key.revoked_at) if key.revoked_at else None,
    }
    if secret is not None:
        body["key"] = secret
    return body


def subject_token_key_out(key: SubjectTokenKey, secret: str | None = None) -> dict[str, Any]:
    body = {"kid": key.kid, "alg": key.alg, "created_at": format_ts(key.created_at),
            "revoked_at": format_ts(key.revoked_at) if key.revoked_at else None}
    if key.alg != "HS256":
        body["public_key"] = key.material
    if secret is not None:
        body["secret"] = secret
    return body


def purpose_out(purpose: Purpose) -> dict[str, Any]:
    return purpose.to_dict()


def policy_out(policy: PolicyVersion) -> dict[str, Any]:
    return policy.to_dict()


def vendor_out(vendor: Vendor) -> dict[str, Any]:
    return vendor.to_dict()


def purpose_state_out(s: PurposeState) -> dict[str, Any]:
    body = {
        "status": str(s.status), "allowed": s.allowed, "updated_at": s.updated_at,
        "policy_version": s.policy_version, "expires_at": s.expires_at,
        "can_prompt": s.can_prompt, "next_prompt_at": s.next_prompt_at,
        "os_permission": s.os_permission, "os_permission_mismatch": s.os_permission_mismatch,
    }
    if s.archived:
        body["archived"] = True
    return body


def state_out(state: SubjectState, at: str | None = None) -> dict[str, Any]:
    body = {
        "subject_id": state.subject_id, "policy_version": state.policy_version,
        "needs_reconsent": state.needs_reconsent, "age_band": state.age_band,
        "purposes": {key: purpose_state_out(s) for key, s in state.purposes.items()},
    }
    if at is not None:
        body["at"] = at
    return body
