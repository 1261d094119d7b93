"""A time limit for Python code that cannot be awaited: rendering a template.

Rendering is synchronous and runs on the event loop, so a runaway template (nested
loops of a hundred thousand turns) would freeze every step of every run, and a step's
`timeout` could not stop it. `watchdog.limit(seconds)` arms a deadline for the
current thread; one daemon thread checks deadlines every few milliseconds and raises
`Overrun` inside a thread that is past its own. Arming and disarming cost a lock and
a clock read, so the hot path (a trivial template per step) stays cheap.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

TICK_S = 0.02


class Overrun(Exception):
    """Raised inside a thread whose limited code ran past its deadline."""


class Watchdog:
    """Deadlines by thread, enforced by one background thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deadlines: dict[int, tuple[float, float]] = {}  # thread -> (deadline, limit)
        self._fired: set[int] = set()
        self._thread: threading.Thread | None = None

    @contextmanager
    def limit(self, seconds: float) -> Iterator[None]:
        """Run the body with `Overrun` raised in it if it takes more than `seconds`.
        Nested limits keep the outer one."""
        tid = threading.get_ident()
        with self._lock:
            if tid in self._deadlines:  # an expression inside a render: already limited
                nested = True
            else:
                nested = False
                self._deadlines[tid] = (time.monotonic() + seconds, seconds)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._watch, name="podium-watchdog",
                                                    daemon=True)
                    self._thread.start()
        if nested:
            yield
            return
        try:
            yield
        finally:
            with self._lock:
                self._deadlines.pop(tid, None)
                if tid in self._fired:  # raised too late to matter: take it back
                    self._fired.discard(tid)
                    _raise_in(tid, None)

    def _watch(self) -> None:
        while True:
            time.sleep(TICK_S)
            now = time.monotonic()
            with self._lock:
                for tid, (deadline, seconds) in list(self._deadlines.items()):
                    if now > deadline and tid not in self._fired:
                        self._fired.add(tid)
                        _raise_in(tid, _overrun(seconds))


def _overrun(seconds: float) -> type[Overrun]:
    """An `Overrun` subclass whose message names the limit (an asynchronous exception
    is raised by class, so the message travels in the class)."""
    return type("Overrun", (Overrun,), {"__str__": lambda self: f"took longer than "
                                        f"{seconds:g} s (the limit for one render)",
                                        "__module__": __name__})


def _raise_in(tid: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid),
                                               ctypes.py_object(exc) if exc else None)


watchdog = Watchdog()
