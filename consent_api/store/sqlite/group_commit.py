"""Group commit for SQLite: many writers, one transaction, one fsync, every answer durable.

With ``synchronous=FULL`` each COMMIT waits for an fsync, and one fsync per write capped this
machine at 500-3,600 commits/s. Here one writer thread per process commits for every request
thread: the writes that queue up while a COMMIT (and its fsync) is under way go into the next
transaction together, and the store applies them with a handful of statements (``apply``).
A caller is woken only after the COMMIT of its transaction has returned, so an acknowledged
write is as durable as before; the batch grows with the load, and a lone write waits for
nothing but its own commit.

Across processes the writer threads of all workers take turns through ``WriteLock`` (flock),
held from BEGIN IMMEDIATE to COMMIT; a write's CPU work is done before it queues (see
Store.append and batch.py). The COMMIT itself does not fsync: a second thread syncs the log after it
(``sync``) and only then answers, so fsyncs no longer happen inside the lock, the writer can
commit the next batch while the last one is being flushed, and the guarantee is unchanged: no
write is acknowledged before an fsync that began after its COMMIT has returned.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from consent_api.suspend import Waitable

MAX_BATCH = 256  # bounds one transaction's size and its callers' wait
# How long the writer, holding the lock with a batch ready, waits for writes whose requests have
# announced themselves and are still being prepared: a fraction of an fsync, for a larger batch.
GATHER_S = 0.001


class Failed:
    """What ``apply`` returns for a write that failed alone; the others of its batch commit."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error


Apply = Callable[[Any, list[Any]], list[Any]]  # (conn, payloads) -> one outcome per payload


def in_forked_child(reset: Callable[[], None]) -> None:
    """Call the bound method reset in a forked child, for as long as its object lives."""
    ref = weakref.WeakMethod(reset)

    def after_fork() -> None:
        method = ref()
        if method is not None:
            method()

    os.register_at_fork(after_in_child=after_fork)


class WriteLock:
    """Exclusive across the threads and the processes that share a database: a thread lock, then
    flock(2) on a lock file next to the database. flock hands the lock over the moment its holder
    lets go; SQLite's busy handler instead polls with sleeps growing to 100 ms, and two workers'
    writer threads measured waits of up to 1.6 s for BEGIN IMMEDIATE that way."""

    def __init__(self, path: str):
        self._path = path
        self._reset()
        in_forked_child(self._reset)

    def _reset(self) -> None:
        # flock belongs to an open file description, which a forked child shares: reopen there
        self._thread_lock = threading.Lock()
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            assert self._fd is not None
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        with self._thread_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class _Job(Waitable):
    """A queued write; its caller waits for it (on the event loop, letting other requests run)."""

    __slots__ = ("payload", "outcome", "durable")

    def __init__(self, payload: Any, durable: bool = True):
        super().__init__()
        self.payload = payload
        self.outcome: Any = None
        self.durable = durable


_STOP = _Job(None)


class GroupCommit:
    """``run(payload)`` queues a write and returns its outcome once the transaction holding it
    has committed and an fsync of the log that began after that COMMIT has returned; a
    ``Failed`` outcome is raised instead. ``run(payload, durable=False)`` returns once the
    COMMIT has returned, without waiting for the fsync (for writes that a crash may lose
    together with everything that depends on them: the webhook worker's bookkeeping).

    Two threads per process: the writer commits batch after batch (synchronous=NORMAL, so a
    COMMIT only writes), the syncer fsyncs and answers. While one fsync runs, the writer
    commits the next batches, and the next fsync covers all of them: commits are no longer
    paced by the disk's flush latency, and every answer still waits for its flush."""

    def __init__(self, connect: Callable[[], Any], apply: Apply,
                 translate: Callable[[BaseException], BaseException], lock: WriteLock,
                 sync: Callable[[], None]):
        self._connect = connect  # a connection whose COMMIT does not fsync: sync() does
        self._apply = apply
        self._translate = translate  # driver errors into the store's own
        self._lock = lock
        self._sync = sync
        self._reset()
        in_forked_child(self._reset)

    def _reset(self) -> None:
        """Fresh queues and no threads: at start, and in a forked child (threads do not survive a fork)."""
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._announced = 0  # writes being prepared that will queue shortly
        self._local = threading.local()  # .announced: this thread's write is announced
        self._threads: list[threading.Thread] = []
        self._synced = threading.Condition()
        self._committed: list[tuple[_Job, Any]] = []  # committed, waiting for an fsync
        self._writer_done = False

    @contextmanager
    def preparing(self) -> Iterator[None]:
        """Around the preparation of a write this thread will likely run(): the next batch waits
        up to GATHER_S for it. A run() inside takes the announcement over; without one (the
        write was refused, or there was nothing to write) it is withdrawn on the way out."""
        with self._cond:
            self._announced += 1
        self._local.announced = True
        try:
            yield
        finally:
            if self._local.announced:
                self._local.announced = False
                with self._cond:
                    self._announced -= 1
                    self._cond.notify()

    def run(self, payload: Any, durable: bool = True) -> Any:
        job = _Job(payload, durable)
        announced = getattr(self._local, "announced", False)
        self._local.announced = False
        with self._cond:
            if not self._threads:
                self._threads = [threading.Thread(target=self._write_loop, name="sqlite-writer", daemon=True),
                                 threading.Thread(target=self._sync_loop, name="sqlite-syncer", daemon=True)]
                for thread in self._threads:
                    thread.start()
            self._queue.append(job)
            if announced:
                self._announced -= 1
            self._cond.notify()
        job.wait()
        if isinstance(job.outcome, Failed):
            raise job.outcome.error
        return job.outcome

    def close(self) -> None:
        """Finish what is queued, then stop both threads and close the writer's connection."""
        with self._cond:
            threads = self._threads
            if not threads:
                return
            self._queue.append(_STOP)
            self._cond.notify()
        for thread in threads:
            thread.join()
        with self._cond:
            self._threads = []
            self._writer_done = False

    def _write_loop(self) -> None:
        conn = None
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
            jobs: list[_Job] = []
            stop = False
            try:
                conn = conn or self._connect()
                # The batch is taken once the lock is held: what queued while another process
                # committed joins this transaction instead of waiting for the next one.
                with self._lock:
                    jobs, stop = self._take()
                    if jobs:
                        outcomes = self._commit(conn, [job.payload for job in jobs])
            except BaseException as exc:  # noqa: BLE001 - the thread must outlive any one batch
                if not jobs:  # no connection, or no lock: fail what is queued, and stop if asked to
                    jobs, stop = self._take()
                outcomes = [Failed(self._translate(exc))] * len(jobs)
                conn = self._recover(conn)
                for job, outcome in zip(jobs, outcomes, strict=True):  # nothing committed: answer at once
                    job.outcome = outcome
                    job.finish()
                jobs = []
            if jobs:
                waiting = []
                for job, outcome in zip(jobs, outcomes, strict=True):
                    if job.durable:
                        waiting.append((job, outcome))
                    else:  # committed; the next fsync covers it without anyone waiting for it
                        job.outcome = outcome
                        job.finish()
                if waiting:
                    with self._synced:
                        self._committed.extend(waiting)
                        self._synced.notify()
            if stop:
                if conn is not None:
                    conn.close()
                with self._synced:
                    self._writer_done = True
                    self._synced.notify()
                return

    def _sync_loop(self) -> None:
        while True:
            with self._synced:
                while not self._committed and not self._writer_done:
                    self._synced.wait()
                committed, self._committed = self._committed, []
                done = self._writer_done and not committed
            if done:
                return
            try:
                self._sync()  # begins after these COMMITs: it covers all of them
            except BaseException as exc:  # noqa: BLE001 - committed but perhaps not durable
                error = Failed(self._translate(exc))
                committed = [(job, error) for job, _ in committed]
            for job, outcome in committed:
                job.outcome = outcome
                job.finish()

    def _take(self) -> tuple[list[_Job], bool]:
        """The queued jobs (after a short wait for announced ones), and whether to stop after them."""
        with self._cond:
            deadline = time.monotonic() + GATHER_S
            while self._announced > 0 and len(self._queue) < MAX_BATCH:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch: list[_Job] = []
            while self._queue and len(batch) < MAX_BATCH:
                batch.append(self._queue.popleft())
        return [job for job in batch if job is not _STOP], _STOP in batch

    def _commit(self, conn: Any, payloads: list[Any]) -> list[Any]:
        conn.execute("BEGIN IMMEDIATE")
        outcomes = self._apply(conn, payloads)
        conn.execute("COMMIT")
        return [Failed(self._translate(o.error)) if isinstance(o, Failed) else o for o in outcomes]

    @staticmethod
    def _recover(conn: Any) -> Any:
        """After a failed batch: roll back what is left of it, or drop the connection."""
        if conn is None or not conn.in_transaction:
            return conn
        try:
            conn.execute("ROLLBACK")
            return conn
        except Exception:
            conn.close()
            return None


class Checkpointer:
    """Copies the write-ahead log into the database, mostly outside the write lock.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 log pages, so inside
    the write lock, with its random writes to the database file and its fsyncs: every writer of
    every process waited for it. The group commit's connection turns it off
    (``wal_autocheckpoint=0``) and calls ``committed()`` after each batch; at most every EVERY_S
    this thread then checkpoints in two steps: a PASSIVE checkpoint outside the lock copies
    what the log holds while writers go on appending, and a second one under the write lock
    copies the few pages appended meanwhile. Only a log copied to its end can start over from
    its beginning (SQLite does that at the next write), so without the second step it would grow
    without bound under a steady load. Durability is unchanged: a write is acknowledged once the
    log holding it is synced, checkpointed or not.

    A log started over still holds the old frames past wherever the new writes have got: the
    content of rows long deleted. ``truncate()`` (after an erasure) asks for a round whose second
    step truncates the log to zero bytes instead; it cannot while a reader still reads an
    older snapshot from the log (an export in progress), and then later rounds try again: every
    round while the caller waits, every RETRY_TRUNCATE_S once it has stopped waiting, so that a
    long export does not have writers wait for a truncating step four times a second."""

    EVERY_S = 0.25
    TRUNCATE_BUSY_MS = 50  # a truncating step waits this long for older readers, holding the write lock
    RETRY_TRUNCATE_S = 2.0

    def __init__(self, connect: Callable[[], Any], lock: WriteLock):
        self._connect = connect
        self._lock = lock
        self._dirty = threading.Event()
        self._stop = threading.Event()  # set by close(): no more waiting between rounds
        self._hurry = threading.Event()  # set by close() and truncate(): no pause before the next round
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._truncation = threading.Condition()
        self._truncations_asked = 0
        self._truncations_done = 0  # every truncation asked for up to this one is done
        self._waiting = 0  # callers of truncate() still waiting
        self._next_truncation = 0.0  # monotonic time of the next attempt after one that failed

    def committed(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
                    self._thread.start()
        self._dirty.set()

    def close(self) -> None:
        """Stop after one last checkpoint of what was committed."""
        with self._start_lock:
            self._stop.set()
            thread = self._thread
        self._hurry.set()
        self._dirty.set()
        if thread is not None:
            thread.join()

    def truncate(self, timeout_s: float) -> bool:
        """Have everything committed so far copied into the database and the log truncated to
        zero bytes; True once done, False when older readers held it back for timeout_s (the
        next rounds go on trying)."""
        with self._truncation:
            self._truncations_asked += 1
            ticket = self._truncations_asked
            self._next_truncation = 0.0
            self._waiting += 1
        self._hurry.set()
        self.committed()
        with self._truncation:
            try:
                return self._truncation.wait_for(lambda: self._truncations_done >= ticket, timeout_s)
            finally:
                self._waiting -= 1

    def checkpoint(self, conn: Any) -> None:
        """One round: copy the log while writers go on, then copy what they appended meanwhile."""
        self.copy(conn)
        with self._lock:
            self.copy(conn)

    @staticmethod
    def copy(conn: Any) -> None:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def truncate_log(self, conn: Any) -> bool:
        """Copy the log to its end and truncate it, waiting at most TRUNCATE_BUSY_MS for readers
        of an older snapshot; whether it did (under the write lock: no writer is under way)."""
        (patience,) = conn.execute("PRAGMA busy_timeout").fetchone()
        conn.execute(f"PRAGMA busy_timeout={self.TRUNCATE_BUSY_MS}")
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.execute(f"PRAGMA busy_timeout={patience}")
        return busy == 0

    def _round(self, conn: Any) -> None:
        with self._truncation:
            ticket = self._truncations_asked
            pending = ticket > self._truncations_done
            due = time.monotonic() >= self._next_truncation
        if pending:
            self._dirty.set()  # come back until it is done
        if not (pending and due):
            self.checkpoint(conn)
            return
        self.copy(conn)
        with self._lock:
            truncated = self.truncate_log(conn)
        with self._truncation:
            if truncated:
                self._truncations_done = ticket
                self._truncation.notify_all()
            else:  # an older reader is still on the log
                self._next_truncation = time.monotonic() + (0.0 if self._waiting else self.RETRY_TRUNCATE_S)

    def _run(self) -> None:
        conn = None
        while True:
            self._dirty.wait()
            self._hurry.wait(self.EVERY_S)  # one checkpoint for all that commits meanwhile, not one per batch
            self._hurry.clear()
            self._dirty.clear()
            try:
                conn = conn or self._connect()
                self._round(conn)
            except Exception:  # noqa: BLE001 - the next round retries; SQLite's log stays valid meanwhile
                if conn is not None:
                    conn.close()
                conn = None
            if self._stop.is_set():
                if conn is not None:
                    conn.close()
                return
