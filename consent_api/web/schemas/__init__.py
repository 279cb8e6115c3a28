"""Request schemas (``...In``) validate and parse; response shapers (``..._out``) serialise.

Input is strict: unknown fields are refused, booleans must be JSON booleans, numbers must be
JSON numbers. Responses are shaped by plain functions because the read path is hot.

    fields.py     field types and shared fields
    requests.py   the ...In schemas and load()
    responses.py  the ..._out shapers
"""

from consent_api.web.schemas.requests import (
    ChecksIn,
    DecisionsIn,
    KeyIn,
    LinkIn,
    PolicyIn,
    PromptsIn,
    PublicConsentsIn,
    PurposeIn,
    RequestAnswerIn,
    RightsRequestIn,
    SettingsIn,
    SubjectTokenKeyIn,
    TenantIn,
    VendorIn,
    WithdrawAllIn,
    flatten,
    load,
)
from consent_api.web.schemas.responses import (
    key_out,
    page_out,
    policy_out,
    purpose_out,
    purpose_state_out,
    request_out,
    state_out,
    subject_token_key_out,
    vendor_out,
)

__all__ = ["ChecksIn", "DecisionsIn", "KeyIn", "LinkIn", "PolicyIn", "PromptsIn", "PublicConsentsIn", "PurposeIn",
           "RequestAnswerIn", "RightsRequestIn", "SettingsIn", "SubjectTokenKeyIn", "TenantIn", "VendorIn",
           "WithdrawAllIn", "flatten", "key_out", "load", "page_out", "policy_out", "purpose_out",
           "purpose_state_out", "request_out", "state_out", "subject_token_key_out", "vendor_out"]
