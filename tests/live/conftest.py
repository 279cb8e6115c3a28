"""A real `consent-api serve` (granian, two worker processes) on 127.0.0.1 and a SQLite file."""

from __future__ import annotations

import pytest

from tests.support import servers


@pytest.fixture
def live_server(tmp_path):
    with servers.serving(tmp_path, workers=2) as server:
        yield server
