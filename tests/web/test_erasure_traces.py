"""After an erasure, no byte of the subject's id is left in the store: on SQLite not in the
write-ahead log once the erasure is answered."""

from __future__ import annotations

from pathlib import Path

from tests.support.apps import ON_A_SQLITE_FILE

SUBJECT = "erase-me-7f3a9c"  # no other value in the store contains it


@ON_A_SQLITE_FILE
def test_the_log_holds_no_erased_id_once_the_erasure_is_answered(tenant, database_url):
    wal = Path(database_url.removeprefix("sqlite:///") + "-wal")
    tenant.grant(SUBJECT, "push")
    assert SUBJECT.encode() in wal.read_bytes()

    tenant.erase(SUBJECT)

    assert SUBJECT.encode() not in wal.read_bytes()
    assert wal.stat().st_size == 0, "the log was truncated"
    tenant.grant("someone-else", "push")  # and the store goes on
    assert tenant.state("someone-else")["purposes"]["push"]["allowed"] is True
