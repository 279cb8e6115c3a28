"""consent_api/suspend.py: code started on the event loop lets the loop go on while it waits for
another thread, and the same code blocks as usual anywhere else."""

from __future__ import annotations

import asyncio
import threading

import pytest

from consent_api.suspend import Waitable, start


def run(coroutine):
    """asyncio.run on a thread of its own: another test's loop (Playwright's) may be running in
    this one."""
    outcome: dict = {}

    def main() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=main)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def finish_later(job: Waitable, release: threading.Event) -> threading.Thread:
    """Another thread finishes job once release is set."""
    thread = threading.Thread(target=lambda: (release.wait(10), job.finish()), daemon=True)
    thread.start()
    return thread


def test_outside_a_started_greenlet_wait_blocks_until_another_thread_finishes():
    job, release = Waitable(), threading.Event()
    finish_later(job, release)
    release.set()
    job.wait()  # returns only once the other thread has finished it (else the test hangs)


def test_waiting_code_hands_the_loop_back_and_resumes_with_its_result():
    jobs = [Waitable(), Waitable()]
    release = threading.Event()
    order: list[str] = []

    def blocking(name: str, job: Waitable) -> str:
        order.append(f"{name} waits")
        job.wait()
        order.append(f"{name} resumes")
        return name.upper()

    async def main() -> list[str]:
        for job in reversed(jobs):  # finished from other threads (after 10 s if never released)
            finish_later(job, release)
        first = start(blocking, "a", jobs[0])
        second = start(blocking, "b", jobs[1])
        # Both reached their wait and gave the loop back: this coroutine runs meanwhile (a wait
        # that blocked the loop would have run "a" to its end before "b" began).
        assert order == ["a waits", "b waits"] and not first.done() and not second.done()
        await asyncio.get_running_loop().run_in_executor(None, release.set)
        return list(await asyncio.gather(first, second))

    assert run(main()) == ["A", "B"]
    assert sorted(order[2:]) == ["a resumes", "b resumes"]


def test_a_job_finished_before_the_wait_does_not_suspend():
    job = Waitable()
    job.finish()

    async def main() -> int:
        return await start(lambda: (job.wait(), 7)[1])

    assert run(main()) == 7


def test_the_code_runs_on_the_loops_thread_and_its_error_is_the_futures():
    job, release = Waitable(), threading.Event()
    threads: list[int] = []

    def failing() -> None:
        threads.append(threading.get_ident())
        job.wait()
        threads.append(threading.get_ident())
        raise ValueError("after the wait")

    async def main() -> None:
        finish_later(job, release)
        future = start(failing)
        release.set()
        with pytest.raises(ValueError, match="after the wait"):
            await future
        assert threads == [threading.get_ident()] * 2

    run(main())
