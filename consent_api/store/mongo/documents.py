"""The MongoStore's own documents: a subject (the id-to-ref mapping and its projected record)
and an event as stored; the catalog's and credentials' are in store/records.py."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from consent_api.domain.model import Action, PurposeRecord, SubjectRecord

NO_ID = {"_id": 0}
# An event as the ledger has it: without the feed's bookkeeping (store/mongo/delivery.py).
EVENT_FIELDS = {"_id": 0, "feed_seq": 0, "fed_at": 0}
CATALOG_FIELDS = {"_id": 0, "tenant_id": 0}


def utc(value: datetime) -> datetime:
    """Datetimes from a client built without tz_aware=True come back naive (and are UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def subject_doc(tenant_id: str, record: SubjectRecord) -> dict[str, Any]:
    # Purposes are a list, not a sub-document keyed by purpose: keys may contain ".".
    return {
        "tenant_id": tenant_id,
        "subject_id": record.subject_id,
        "subject_ref": record.subject_ref,
        "seq": record.seq,
        "head_hash": record.head_hash,
        "age_band": record.age_band,
        "purposes": [{"key": key, **rec.to_dict()} for key, rec in sorted(record.purposes.items())],
        "granted": sorted(key for key, rec in record.purposes.items() if rec.action == Action.GRANT),
        "updated_at": record.updated_at,
    }


def record_from(doc: dict[str, Any]) -> SubjectRecord:
    purposes = {}
    for item in doc.get("purposes") or ():
        fields = dict(item)
        key = fields.pop("key")
        purposes[key] = PurposeRecord.from_dict(fields)
    return SubjectRecord(
        subject_id=doc["subject_id"], subject_ref=doc["subject_ref"], seq=doc["seq"],
        head_hash=doc["head_hash"], age_band=doc.get("age_band"), purposes=purposes,
        updated_at=doc.get("updated_at"),
    )


def event_doc(event: dict[str, Any]) -> dict[str, Any]:
    """The stored form of an event: everything the chain covers; subject_id lives in subjects."""
    return {k: v for k, v in event.items() if k != "subject_id"}
