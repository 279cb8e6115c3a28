"""Request schemas (``...In``): strict validation and parsing; ``load`` turns a failure into 422."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from consent_api.domain.deadlines import DayCount
from consent_api.domain.model import (
    POLICY_VERSION,
    PURPOSE_KEY,
    ActorType,
    AgeBand,
    Channel,
    Kind,
    OsPermission,
    Scope,
)
from consent_api.domain.requests import RequestType
from consent_api.errors import Invalid
from consent_api.security.tokens import SUBJECT_TOKEN_ALGS
from consent_api.services.catalog import CONSENT_MODE_SIGNALS
from consent_api.web.schemas.fields import (
    Locale,
    LocalizedText,
    Sha256,
    ShownLocale,
    Str,
    StrictBoolean,
    StrictFloat,
    StrictInteger,
    Timestamp,
    Url,
    anonymous_id,
    one_of,
)


class TenantIn(Schema):
    name = Str(required=True, validate=validate.Length(min=1, max=200))


class KeyIn(Schema):
    name = Str(required=True, validate=validate.Length(min=1, max=200))
    type = Str(load_default="secret", validate=validate.OneOf(["secret", "publishable"]))
    scopes = fields.List(Str(validate=one_of(Scope)), load_default=list,
                         validate=validate.Length(max=10))
    origins = fields.List(Str(validate=validate.Length(min=1, max=300)), load_default=list,
                          validate=validate.Length(max=50))


class SubjectTokenKeyIn(Schema):
    alg = Str(required=True, validate=validate.OneOf(SUBJECT_TOKEN_ALGS))
    public_key = fields.Raw(load_default=None, allow_none=True)

    @validates_schema
    def _public_key_shape(self, data, **kwargs):
        key = data.get("public_key")
        if key is not None and not isinstance(key, (str, dict)):
            raise ValidationError("a PEM string or a JWK object", "public_key")
        if isinstance(key, str) and len(key) > 20000:
            raise ValidationError("too long", "public_key")


class PurposeIn(Schema):
    kind = Str(required=True, validate=one_of(Kind))
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
    channel = Str(required=True, validate=one_of(Channel))
    collection_point = Str(allow_none=True, validate=validate.Length(max=200))
    ui_text_sha256 = Sha256
    sdk_version = Str(allow_none=True, validate=validate.Length(max=64))


class ActorIn(Schema):
    type = Str(load_default=str(ActorType.SELF), validate=one_of(ActorType))
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
    os_permission = Str(allow_none=True, load_default=None, validate=one_of(OsPermission))


class DecisionsIn(Schema):
    decisions = fields.List(fields.Nested(DecisionIn), required=True,
                            validate=validate.Length(min=1, max=100))
    policy_version = Str(required=True, validate=validate.Regexp(POLICY_VERSION))
    source = fields.Nested(SourceIn, required=True)
    locale = ShownLocale
    actor = fields.Nested(ActorIn, allow_none=True, load_default=None)
    age_band = Str(allow_none=True, load_default=None, validate=one_of(AgeBand))
    occurred_at = Timestamp(allow_none=True, load_default=None)

    _no_purpose_twice = validates_schema(lambda self, data, **kw: _each_purpose_once(data))


class WithdrawAllIn(Schema):
    source = fields.Nested(SourceIn, required=True)
    locale = ShownLocale


class LinkIn(Schema):
    anonymous_subject_id = anonymous_id("an anonymous web subject id: anon- followed by letters, digits or ._:@+-")


class PromptsIn(Schema):
    purposes = fields.List(Str(validate=validate.Regexp(PURPOSE_KEY)), required=True,
                           validate=validate.Length(min=1, max=100))
    source = fields.Nested(SourceIn, required=True)
    locale = ShownLocale
    os_permissions = fields.Dict(keys=Str(validate=validate.Regexp(PURPOSE_KEY)),
                                 values=Str(validate=one_of(OsPermission)),
                                 load_default=dict)


class PublicDecisionIn(Schema):
    purpose = Str(required=True, validate=validate.Regexp(PURPOSE_KEY))
    granted = StrictBoolean(required=True)


class PublicConsentsIn(Schema):
    subject_id = anonymous_id("an anonymous id: anon- followed by letters, digits or ._:@+-")
    decisions = fields.List(fields.Nested(PublicDecisionIn), required=True,
                            validate=validate.Length(min=1, max=100))
    policy_version = Str(required=True, validate=validate.Regexp(POLICY_VERSION))
    locale = ShownLocale
    gpc = StrictBoolean(load_default=False)

    _no_purpose_twice = validates_schema(lambda self, data, **kw: _each_purpose_once(data))


class ChecksIn(Schema):
    purpose = Str(required=True, validate=validate.Regexp(PURPOSE_KEY))
    subject_ids = fields.List(Str(validate=validate.Length(min=1, max=128)), required=True,
                              validate=validate.Length(min=1, max=1000))


class RightsRequestIn(Schema):
    type = fields.String(required=True, validate=one_of(RequestType))
    details = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=4000))
    channel = fields.String(allow_none=True, load_default=None, validate=one_of(Channel))


class RequestAnswerIn(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["in_progress", "completed", "rejected"]))
    note = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=4000))
    reason = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=2000))


class RequestDeadlineIn(Schema):
    days = StrictInteger(required=True, validate=validate.Range(min=1, max=90))
    calendar = fields.String(required=True, validate=one_of(DayCount))


class SettingsIn(Schema):
    request_deadline = fields.Nested(RequestDeadlineIn, required=True)


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
