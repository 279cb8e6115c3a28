"""The export's progress line: share, counts, rate and ETA, throttled."""

from __future__ import annotations

import io

from consent_api.progress import Progress


class Ticks:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_shows_rate_and_eta_and_redraws_in_place_on_a_terminal():
    clock, out = Ticks(), io.StringIO()
    bar = Progress(1_000_000, stream=out, clock=clock, tty=True)
    clock.now += 10
    bar.update(250_000)
    assert out.getvalue() == ("\r\x1b[2Kexporting [######                  ]  25.0%  250,000/1,000,000 events  "
                              "25,000/s  ETA 0:00:30")
    clock.now += 0.1
    bar.update(260_000)  # throttled: drawn at most every 0.2 s
    assert out.getvalue().count("\r") == 1
    clock.now += 30
    bar.finish(1_000_000)
    assert out.getvalue().endswith("100.0%  1,000,000/1,000,000 events  24,938/s  ETA 0:00:00\n")


def test_progress_without_a_total_or_a_terminal_prints_lines_every_few_seconds():
    clock, out = Ticks(), io.StringIO()
    bar = Progress(None, stream=out, clock=clock, tty=False)
    clock.now += 1
    bar.update(10)
    assert out.getvalue() == ""
    clock.now += 5
    bar.update(60_000)
    assert out.getvalue() == "exporting 60,000 events  10,000/s  0:00:06 elapsed\n"
