"""Work that runs beside the HTTP server in `consent-api serve`: a daemon thread that calls a
function every interval seconds, logs a round that fails and goes on, and stops with the server.

It runs in the serving process itself (not in granian's workers), so one server runs one of
each; what it does must stay correct when two servers share a store (the rights-request tick
marks with a compare-and-set, so two ticks never write the same notice twice)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("consent_api")


class Every:
    """Call fn() now and then every interval_s seconds, on a daemon thread, until stop()."""

    def __init__(self, name: str, interval_s: float, fn: Callable[[], object]):
        self.name = name
        self.interval_s = interval_s
        self.fn = fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Every:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.fn()
            except Exception:  # a failed round is logged; the next one tries again
                log.exception("background round failed", extra={"task": self.name})
            self._stop.wait(self.interval_s)
