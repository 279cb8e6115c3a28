"""Domain model details that a faster implementation must not change."""

from dataclasses import asdict, fields

from consent_api.domain.model import PurposeRecord


def test_purpose_record_to_dict_is_asdict_without_nones():
    full = PurposeRecord(**{f.name: f"v-{f.name}" for f in fields(PurposeRecord)})
    assert full.to_dict() == asdict(full)
    assert list(full.to_dict()) == [f.name for f in fields(PurposeRecord)]
    assert PurposeRecord(action="grant").to_dict() == {"action": "grant"}
