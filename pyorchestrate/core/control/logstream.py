"""Serving ``logs`` requests: one thread reads the files of every open log stream.

The command server's selector thread never touches a log file: it parses a ``logs``
request and hands it to its :class:`LogStreamer`. The streamer's one thread
(``pyorchestrate-control-NAME-logs``, started with the first request, owned and
closed by the server) looks the agent's files up on the target, reads the lines asked
for, and then, for a follower, polls the files every ``poll_interval`` seconds. It
hands each encoded line (the reply, batches of entries, the end) to the server through
``deliver``, which only queues them for the selector thread.

Bounds:

- at most ``max_streams`` streams at once; one more is refused with a 409 ``Conflict``
  ("busy") instead of a thread or a file descriptor more;
- a stream whose client reads slowly is paused once ``max_unsent`` bytes wait for it
  (nothing is dropped: the files hold the lines), and resumed when it has read half;
- a cancelled stream (its connection closed) is forgotten at the next wake-up, which
  the cancel itself triggers.

When the server stops, each stream gets what its files hold then (up to a bound), and
a ``LOG_END`` line with reason ``shutdown``: a follower ends cleanly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..errors import (
    AgentNotFound,
    CommandFailed,
    Conflict,
    ControlError,
    RegistrationError,
)
from .logfiles import LogReader
from .logquery import LogQuery
from .protocol import encode, error_reply, log_end, log_lines, success_reply
from .target import ControlTarget

__all__ = ["LogStream", "LogStreamer"]

logger = logging.getLogger("pyorchestrate.control")

_BUDGET = 262_144
"""Bytes of each file read per stream and round."""

_FINAL_BUDGET = 4 * _BUDGET
"""Bytes a stream still gets when the server stops (then it ends)."""


class LogStream:
    """One ``logs`` request being served, from its reply to its end.

    The byte counters let the two threads agree on how far behind the client is
    without a lock: ``produced`` is written only by the streamer, ``collected`` and
    ``delivered`` only by the server.
    """

    def __init__(self, query: LogQuery, request_id: str | None) -> None:
        self.query = query
        self.request_id = request_id
        self.reader: LogReader | None = None
        self.produced = 0
        """Bytes of entries handed to the server."""
        self.collected = 0
        """Bytes of entries the server has put in the connection's outbox."""
        self.delivered = 0
        """Bytes of entries that have left the outbox (about)."""
        self.paused = False
        self.cancelled = False
        self.finished = False

    @property
    def unsent(self) -> int:
        """Bytes handed over and not yet sent."""
        return self.produced - self.delivered


Deliver = Callable[[LogStream, bytes, bool], None]
"""``deliver(stream, data, finished)``: queue ``data`` for the stream's connection;
``finished``: the stream has ended (after ``data``). Must not block."""


class LogStreamer:
    """Reads the files of every open ``logs`` stream on one thread.

    Args:
        target: where agents' files are found.
        sender: the ``sender`` of every line (the orchestrator's name).
        deliver: hands encoded lines to the server (see :data:`Deliver`).
        poll_interval: seconds between two looks at followed files.
        max_streams: streams served at once; one more gets a 409.
        max_unsent: bytes a stream may have waiting before it is paused.
    """

    def __init__(
        self,
        target: ControlTarget,
        *,
        sender: str,
        deliver: Deliver,
        poll_interval: float = 0.2,
        max_streams: int = 64,
        max_unsent: int = 1_048_576,
    ) -> None:
        self._target = target
        self._sender = sender
        self._deliver = deliver
        self.poll_interval = poll_interval
        self.max_streams = max_streams
        self.max_unsent = max_unsent
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._new: list[LogStream] = []
        self._count = 0  # streams added and not yet finished
        self._thread: threading.Thread | None = None
        self._closing = False

    # ------------------------------------------------------------ any thread
    def open(self, stream: LogStream) -> None:
        """Serve ``stream`` (its reply, lines and end go through ``deliver``).

        Raises:
            Conflict: ``max_streams`` streams are open already.
            CommandFailed: the streamer is closed (the orchestrator is stopping).
        """
        with self._lock:
            if self._closing:
                raise CommandFailed("the orchestrator is shutting down")
            if self._count >= self.max_streams:
                raise Conflict(
                    f"busy: {self._count} log streams are open, the most this "
                    "orchestrator serves at once; try again when one has ended",
                    data={"max_streams": self.max_streams},
                )
            self._count += 1
            self._new.append(stream)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run,
                    name=f"pyorchestrate-control-{self._sender}-logs",
                    daemon=True,
                )
                self._thread.start()
        self._wakeup.set()

    def cancel(self, stream: LogStream) -> None:
        """Stop serving ``stream`` (its connection is gone); nothing more is
        delivered for it."""
        stream.cancelled = True
        self._wakeup.set()

    def wake(self) -> None:
        """Look at the streams now (a paused one may go on)."""
        self._wakeup.set()

    @property
    def open_streams(self) -> int:
        """Streams being served now."""
        with self._lock:
            return self._count

    def close(self, timeout: float = 2.0) -> bool:
        """End every stream (reason ``shutdown``) and stop the thread; return
        whether it ended. Idempotent."""
        with self._lock:
            self._closing = True
            thread = self._thread
        if thread is None:
            return True
        self._wakeup.set()
        thread.join(timeout)
        return not thread.is_alive()

    # ------------------------------------------------------------ the thread
    def _run(self) -> None:
        streams: list[LogStream] = []
        try:
            while True:
                # Idle (no stream): sleep until a request or the close wakes it.
                self._wakeup.wait(self.poll_interval if streams else None)
                self._wakeup.clear()
                with self._lock:
                    new, self._new = self._new, []
                    closing = self._closing
                streams.extend(stream for stream in new if self._start(stream))
                if closing:
                    break
                more = False
                for stream in streams:
                    if stream.cancelled or stream.finished:
                        continue
                    if stream.unsent > self.max_unsent:
                        stream.paused = True
                        continue
                    more |= self._pump(stream, _BUDGET)
                streams = [s for s in streams if self._keep(s)]
                if more:
                    self._wakeup.set()
            for stream in streams:
                if not (stream.cancelled or stream.finished):
                    self._pump(stream, _FINAL_BUDGET)
                if not (stream.cancelled or stream.finished):
                    self._end(stream, "shutdown")
                self._keep(stream)
        except Exception:  # never silently: every stream still open ends
            logger.exception("log streamer failed; ending its streams")
            for stream in streams:
                if not (stream.cancelled or stream.finished):
                    self._end(stream, "error", "the log streamer failed")
                self._keep(stream)

    def _keep(self, stream: LogStream) -> bool:
        """Whether ``stream`` stays; if not, close its files and free its place."""
        if not (stream.cancelled or stream.finished):
            return True
        if stream.reader is not None:
            stream.reader.close()
        with self._lock:
            self._count -= 1
        return False

    def _start(self, stream: LogStream) -> bool:
        """Find the agent's files, place the reader, send the reply; whether the
        stream goes on (an error reply ends it)."""
        name = stream.query.agent
        if stream.cancelled:
            with self._lock:
                self._count -= 1
            return False
        try:
            if not self._target.has_agent(name):
                raise AgentNotFound(f"agent {name!r} is not registered")
            logs_dir = self._target.logs_dir
            if logs_dir is None:
                raise Conflict(
                    f"agent {name!r} has no log files: this orchestrator's logs_dir "
                    "is off (its agents' output goes to its own stdout and stderr)"
                )
            if self._target.agent_details(name).agent.flavour == "thread":
                raise Conflict(
                    f"agent {name!r} is a thread agent: only process agents' output "
                    "is captured to log files"
                )
            stream.reader = LogReader(logs_dir, stream.query)
        except Exception as exc:  # every failure becomes the error reply
            error = _as_control_error(exc, name)
            reply = error_reply(stream.request_id, error, sender=self._sender)
            stream.finished = True
            self._deliver(stream, encode(reply), True)
            with self._lock:
                self._count -= 1
            return False
        data = {
            "agent": name,
            "query": stream.query.to_dict(),
            "files": {
                cursor.stream: str(cursor.path) for cursor in stream.reader.cursors
            },
        }
        reply = success_reply(stream.request_id, data, sender=self._sender)
        self._deliver(stream, encode(reply), False)
        return True

    def _pump(self, stream: LogStream, budget: int) -> bool:
        """Send what ``stream``'s files hold now (about ``budget`` bytes a file);
        whether more is there to read at once."""
        assert stream.reader is not None
        try:
            entries, caught_up = stream.reader.read(budget)
        except OSError as exc:
            logger.warning("logs of %r: reading failed: %s", stream.query.agent, exc)
            self._end(stream, "error", f"reading the log files failed: {exc}")
            return False
        except Exception as exc:  # one stream's failure ends it, not the others
            logger.exception("logs of %r: reading failed", stream.query.agent)
            self._end(stream, "error", f"{type(exc).__name__}: {exc}")
            return False
        if entries:
            data = encode(
                log_lines(
                    [entry.to_dict() for entry in entries],
                    request_id=stream.request_id,
                    sender=self._sender,
                )
            )
            stream.produced += len(data)
            self._deliver(stream, data, False)
        if caught_up and not stream.query.follow:
            self._end(stream, "done")
            return False
        return not caught_up

    def _end(self, stream: LogStream, reason: str, error: str | None = None) -> None:
        stream.finished = True
        line = log_end(
            reason, request_id=stream.request_id, sender=self._sender, error=error
        )
        self._deliver(stream, encode(line), True)


def _as_control_error(exc: BaseException, agent: str) -> ControlError:
    if isinstance(exc, ControlError):
        return exc
    if isinstance(exc, RegistrationError):
        return AgentNotFound(f"agent {agent!r} is not registered")
    if isinstance(exc, OSError):
        return CommandFailed(f"cannot read the log files of {agent!r}: {exc}")
    logger.error("logs of %r failed", agent, exc_info=exc)
    return CommandFailed(f"{type(exc).__name__}: {exc}")
