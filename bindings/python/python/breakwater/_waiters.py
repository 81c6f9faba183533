"""The threads asyncio callers wait on for a bulkhead slot (a standalone bulkhead's or
a policy's).

Why threads, and not an ``asyncio`` future: the C ABI has no acquire that refuses a
full bulkhead without counting the refusal (``bw_bulkhead_try_acquire`` and
``bw_policy_acquire`` count it), so trying, waiting on the loop and trying again would
count a rejection per try. The engine's own waiting acquire counts each call once
(permitted, or one rejection when ``max_wait`` passes) and serves waiters in arrival
order, sync and async alike; it blocks a thread (the GIL released) for the wait.

Why not ``loop.run_in_executor(None, ...)``: the default executor has a few threads
(``min(32, cpus + 4)``), so the 7th waiter queued behind the first six before it even
began its engine wait — its ``max_wait`` started late, it was admitted or refused out of
turn — and everything else that uses the default executor (``getaddrinfo``,
``asyncio.to_thread``) was stuck behind bulkhead waits. This pool has one thread per
waiter at most: a wait never queues behind another, so it starts when the call starts
waiting. Idle threads are reused, and exit after ``IDLE_SECONDS`` without work or when
the interpreter exits.
"""
from __future__ import annotations

import concurrent.futures
import queue
import threading
from typing import Any, Callable, Optional, Tuple

IDLE_SECONDS = 30.0

_Job = Tuple["concurrent.futures.Future[Any]", Callable[..., Any], Tuple[Any, ...]]


class WaitPool:
    """Runs each submitted (blocking) call on its own thread: an idle one if there is
    one, else a new one; never queues a call behind a running one."""

    def __init__(self, name: str = "breakwater-wait", idle_seconds: float = IDLE_SECONDS) -> None:
        self._name = name
        self._idle_seconds = idle_seconds
        # A job, or None: exit (at interpreter shutdown, see `stop_idle`).
        self._jobs: "queue.SimpleQueue[Optional[_Job]]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        # Threads waiting for a job, less the jobs queued for them (each queued job
        # reserved one idle thread); only changed under the lock.
        self._idle = 0
        self._threads = 0

    @property
    def threads(self) -> int:
        """Threads alive now (busy or idle)."""
        return self._threads

    def submit(self, fn: Callable[..., Any], *args: Any) -> "concurrent.futures.Future[Any]":
        future: "concurrent.futures.Future[Any]" = concurrent.futures.Future()
        with self._lock:
            self._jobs.put((future, fn, args))
            if self._idle > 0:
                self._idle -= 1
                return future
            self._threads += 1
        # Not a daemon: at interpreter exit a wait in the engine ends (within its
        # max_wait) before the interpreter goes, as the default executor's threads do;
        # idle threads are told to exit then (`stop_idle`).
        try:
            threading.Thread(target=self._work, name=f"{self._name}-{self._threads}").start()
        except BaseException:
            with self._lock:
                self._threads -= 1
            raise
        return future

    def _work(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            future, fn, args = job
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del job, future, fn, args
            with self._lock:
                self._idle += 1

    def stop_idle(self) -> None:
        """Makes every thread exit once it has nothing to do (interpreter shutdown)."""
        with self._lock:
            for _ in range(self._threads):
                self._jobs.put(None)

    def _next_job(self) -> Optional[_Job]:
        while True:
            try:
                job = self._jobs.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    # No job is queued, so none reserved this thread: it may go.
                    if self._jobs.empty():
                        self._idle -= 1
                        self._threads -= 1
                        return None
                continue
            if job is None:
                with self._lock:
                    self._idle -= 1
                    self._threads -= 1
            return job


_POOL = WaitPool()
# Before the interpreter joins its non-daemon threads (the hook concurrent.futures
# uses; Python 3.9+).
getattr(threading, "_register_atexit", lambda fn: None)(_POOL.stop_idle)


def submit(fn: Callable[..., Any], *args: Any) -> "concurrent.futures.Future[Any]":
    """Runs ``fn(*args)`` on a thread of the process's wait pool."""
    return _POOL.submit(fn, *args)


def pool() -> WaitPool:
    """The process's wait pool (tests read ``threads``)."""
    return _POOL
