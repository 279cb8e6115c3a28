"""Blocking code run on an event loop that, where it would wait for another thread, lets the
loop go on instead (greenlet, as SQLAlchemy's asyncio bridge does).

A decision write spends most of its time waiting for its group commit (another thread commits
and syncs it) and a few hundred microseconds of CPU around that wait. Run on a thread of the
server's pool, every write crossed threads four times (loop, pool thread, writer, syncer, back
again), and on this 2-core machine a quarter of the CPU then went to waking threads. ``start``
runs such code in a greenlet on the loop's own thread; when it reaches ``wait`` (the group
commit's), the greenlet switches back to the loop, which serves other requests until the other
thread reports the job done, then switches back in. Outside a greenlet of ``start``, ``wait``
simply blocks, so the same code runs unchanged on any thread.

The code must not hold a lock, an open cursor or a transaction across ``wait``: other greenlets
run on the same thread meanwhile, with the same thread-local state (the group commit takes
its thread-local announcement over before it waits, so none is left to share).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import greenlet


class Waitable:
    """Something another thread finishes: ``finish()`` there, ``wait()`` here."""

    __slots__ = ("_done", "_resume")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._resume: Callable[[], object] | None = None

    def finish(self) -> None:
        self._done.set()
        resume = self._resume
        if resume is not None:
            resume()

    def wait(self) -> None:
        current = greenlet.getcurrent()
        if not isinstance(current, _OnLoop):
            self._done.wait()
            return
        loop = current.loop
        ready = loop.create_future()
        self._resume = lambda: loop.call_soon_threadsafe(_settle, ready)
        if self._done.is_set():  # finished before it could tell us: no need to switch
            return
        current.parent.switch(ready)  # to start()'s step, which resumes us once ready is done


def _settle(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class _OnLoop(greenlet.greenlet):
    loop: asyncio.AbstractEventLoop


def start(fn: Callable[..., Any], *args: Any) -> asyncio.Future:
    """Run fn(*args) in a greenlet on the running loop; a future of its result. fn runs until
    its first wait before this returns, and on the loop's thread throughout."""
    loop = asyncio.get_running_loop()
    result = loop.create_future()
    task = _OnLoop(fn)
    task.loop = loop

    def step(*send: Any) -> None:
        try:
            waiting = task.switch(*send)
        except BaseException as exc:  # noqa: BLE001 - fn's error is the future's
            if not result.done():
                result.set_exception(exc)
            return
        if task.dead:
            if not result.done():
                result.set_result(waiting)
        else:
            waiting.add_done_callback(lambda _: step())

    step(*args)
    return result
