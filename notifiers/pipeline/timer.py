"""PipelineTimer: the small thread that hands the pipeline's due alerts on."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable

from ..base import Notification
from ._pipeline import AlertPipeline

__all__ = ["PipelineTimer"]

logger = logging.getLogger("notifiers.pipeline")


class PipelineTimer:
    """A small thread that hands :meth:`AlertPipeline.due` to ``submit`` on time.

    Started by the first :meth:`schedule` with a deadline (no pending summary: no
    thread); :meth:`close` stops and joins it. It waits on the real clock for the
    pipeline clock's remaining time; with a fake clock, call :meth:`poke` after moving
    it (a :class:`~pyorchestrate.testing.FakeClock` is followed by itself).

    Args:
        pipeline: the pipeline.
        submit: called with each notification, on the timer's thread.
        name: the thread's name (``notifiers-pipeline`` …).
        max_wait: the longest real wait before looking again (seconds).
    """

    def __init__(
        self,
        pipeline: AlertPipeline,
        submit: Callable[[Notification], object],
        *,
        name: str = "notifiers-pipeline",
        max_wait: float = 60.0,
    ) -> None:
        self.pipeline = pipeline
        self.name = name
        self._submit = submit
        self._max_wait = max_wait
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._wake_at = math.inf
        on_advance = getattr(pipeline._clock, "on_advance", None)
        if callable(on_advance):
            on_advance(self.poke)

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def schedule(self, deadline: float | None) -> None:
        """Something is due at ``deadline`` (pipeline clock): wake up by then."""
        if deadline is None:
            return
        with self._cond:
            if self._closed or deadline >= self._wake_at:
                return
            self._wake_at = deadline
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=self.name, daemon=True
                )
                self._thread.start()
            else:
                self._cond.notify()

    def poke(self) -> None:
        """Look at the pipeline again now (e.g. after a fake clock moved)."""
        with self._cond:
            if self._thread is not None:
                self._cond.notify()

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the thread and join it; ``False`` if it is still running."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _run(self) -> None:
        pipeline = self.pipeline
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    deadline = pipeline.next_due()
                    if deadline is None:
                        self._wake_at = math.inf
                        self._cond.wait()
                        continue
                    remaining = deadline - pipeline.now()
                    if remaining <= 0:
                        break
                    self._wake_at = deadline
                    self._cond.wait(min(remaining, self._max_wait))
                self._wake_at = math.inf
            try:
                for notification in pipeline.due():
                    self._submit(notification)
            except Exception:
                logger.exception("alert pipeline timer: due() or submit failed")
                with self._cond:
                    self._cond.wait(0.1)

    def __repr__(self) -> str:
        state = "running" if self.running else "idle"
        return f"<PipelineTimer {self.name!r} {state}>"
