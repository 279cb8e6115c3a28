"""What the CLI shows while it works, on stderr: a per-tenant bar for store migrations, and a
progress line with rate and ETA for exports."""

from __future__ import annotations

import sys
import time


class TenantBar:
    """A progress bar on stderr, redrawn when the whole percentage changes."""

    WIDTH = 30

    def __init__(self) -> None:
        self._last: tuple[str, int] | None = None

    def __call__(self, tenant_id: str, done: int, total: int, events: int) -> None:
        percent = 100 * done // total if total else 100
        if (tenant_id, percent) == self._last and done != total:
            return
        self._last = (tenant_id, percent)
        filled = self.WIDTH * percent // 100
        print(f"\r  {tenant_id} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {percent:3d}% "
              f"{done:,}/{total:,} chains, {events:,} events", end="\n" if done == total else "",
              file=sys.stderr, flush=True)


class Progress:
    """A progress line on stderr: done/total, rate and ETA. Redrawn in place on a terminal,
    otherwise one line every few seconds so logs stay readable."""

    def __init__(self, total: int | None, label: str = "exporting", stream=None, clock=time.monotonic,
                 tty: bool | None = None):
        self.total, self.label, self.clock = total, label, clock
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = 0.2 if self.tty else 5.0
        self.started = self.last = clock()

    def update(self, done: int) -> None:
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self._draw(self.render(done, now), final=False)

    def finish(self, done: int) -> None:
        self._draw(self.render(done, self.clock()), final=True)

    def render(self, done: int, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        if not self.total:
            return f"{self.label} {done:,} events  {rate:,.0f}/s  {_duration(elapsed)} elapsed"
        share = min(done / self.total, 1.0)
        bar = "#" * int(share * 24)
        eta = _duration((self.total - done) / rate) if rate > 0 else "--:--"
        return (f"{self.label} [{bar:<24}] {share:6.1%}  {done:,}/{self.total:,} events  "
                f"{rate:,.0f}/s  ETA {eta}")

    def _draw(self, text: str, final: bool) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
