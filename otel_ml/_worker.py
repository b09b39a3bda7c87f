"""A background worker's lifecycle, shared by the library's senders: a daemon thread that runs a unit of
work every interval, when woken, and on :meth:`BackgroundWorker.flush` (which waits, bounded, for a pass
that started after it was called); flushed at interpreter exit; reset in a fork child, whose copy of the
parent's thread does not run.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any

from ._log import internal_error

EXIT_FLUSH_S = 5.0  # an unreachable collector costs at most this at exit


class BackgroundWorker:
    """Runs ``work()`` (True: success) on a daemon thread named ``name``, every ``interval_s`` seconds.

    ``on_start`` runs on the thread that starts the worker, before its thread starts (set-up that must not
    compete with the work); ``at_exit`` replaces the default at interpreter exit (stop, flushing first).
    """

    def __init__(self, name: str, work: Callable[[], bool], interval_s: float, *,
                 on_start: Callable[[], None] | None = None, at_exit: Callable[[], None] | None = None) -> None:
        self.name = name
        self.interval_s = interval_s
        self._work = work
        self._on_start = on_start
        self._at_exit_hook = at_exit
        self._atexit = False
        self._init_state()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=partial(_reset_in_child, weakref.ref(self)))

    def _init_state(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._requested = 0
        self._completed = 0
        self._results: dict[int, bool] = {}
        self._woken = False
        self._stop = False
        self.running = False

    def start(self) -> None:
        """Start the thread if it is not running (idempotent; a fork child starts its own)."""
        if self.running:
            return
        with self._cond:
            if self.running:
                return
            self._stop = False
            if self._on_start is not None:
                self._on_start()
            t = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread = t
            self.running = True
            t.start()
        if not self._atexit:
            self._atexit = True
            atexit.register(_at_exit, weakref.ref(self))

    def wake(self) -> None:
        """Run a pass soon, without waiting for it."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Run a pass now; True when one that started after this call succeeded within ``timeout_s``."""
        self.start()
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._cond:
            self._requested += 1
            target = self._requested
            self._cond.notify_all()
            while self._completed < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.running:
                    return False
                self._cond.wait(remaining)
            return self._results.get(target, False)

    def stop(self, timeout_s: float = 5.0, flush: bool = True) -> None:
        """Optionally flush, then stop the thread (waits at most ``timeout_s`` for it)."""
        if flush and self.running:
            self.flush(timeout_s)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout_s)
        self._init_state()

    def _run(self) -> None:
        me = threading.current_thread()
        cond = self._cond
        next_at = time.monotonic() + self.interval_s
        while True:
            with cond:
                while not self._stop and not self._woken and self._requested <= self._completed and self._thread is me:
                    remaining = next_at - time.monotonic()
                    if remaining <= 0:
                        break
                    cond.wait(remaining)
                if self._stop or self._thread is not me:
                    return
                target = self._requested
                self._woken = False
            try:
                ok = bool(self._work())
            except Exception as exc:  # the thread never dies
                internal_error(self.name, exc)
                ok = False
            if time.monotonic() >= next_at:
                next_at = time.monotonic() + self.interval_s
            with cond:
                if self._thread is not me:
                    return
                for seq in range(self._completed + 1, target + 1):
                    self._results[seq] = ok
                self._completed = max(self._completed, target)
                if len(self._results) > 64:
                    for seq in sorted(self._results)[:-64]:
                        del self._results[seq]
                cond.notify_all()


def _reset_in_child(ref: Any) -> None:
    worker = ref()
    if worker is not None:
        worker._init_state()  # the parent's thread does not run here


def _at_exit(ref: Any) -> None:
    worker = ref()
    if worker is not None and worker.running:
        try:
            if worker._at_exit_hook is not None:
                worker._at_exit_hook()
            else:
                worker.stop(EXIT_FLUSH_S, flush=True)
        except Exception:
            pass
