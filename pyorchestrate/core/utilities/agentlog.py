"""A process agent's ``logging`` records, sent to the orchestrator and logged there.

In the child, :func:`forward_logging` makes the root logger's only handler a
:class:`LinkLogHandler`, which sends each record over the agent's link (the pipe the
router already reads) as a ``LOG`` message: logger name, level, the message with its
arguments already formatted, the formatted traceback and stack, and where and when
it was made. The child's thresholds are the orchestrator's, taken when the agent
started (:func:`logging_levels`): the root's level, every logger's explicitly set
level and ``logging.disable``. So a script that calls ``logging.basicConfig(level=
logging.INFO)`` before it starts its agents sees their INFO lines, and one with no
logging sees WARNING and above, through Python's last resort, as for its own records.

In the orchestrator, the router hands each record to a :class:`LogRelay` (never
waiting), whose one thread logs it again on a logger of the same name, so the
user's handlers, filters and formats apply, off the router thread. Each re-made record
has an ``agent`` attribute, the child's pid as ``process``, and its message starts with
``[AGENT] ``, so the agent shows with any format, ``%(message)s`` included. A child's
record is printed once, by the orchestrator: the handlers the child inherited (a
``basicConfig`` run at import) are taken off the child's root logger.

When the orchestrator's logging cannot keep up, at most :data:`LogRelay.MAX_PENDING`
records wait; the ones after are dropped and counted, and the count is logged once,
at WARNING, when the relay has caught up. The router never waits for logging, so the
child waits at most for the router to read its pipe.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sys
import threading
import time
from typing import Any, Protocol

from .messaging import MessageType, ServiceMessage

__all__ = [
    "MAX_MESSAGE_CHARS",
    "MAX_TRACEBACK_CHARS",
    "LinkLogHandler",
    "LogRelay",
    "forward_logging",
    "logging_levels",
    "make_record",
]

logger = logging.getLogger("pyorchestrate.logs")

MAX_MESSAGE_CHARS = 16_000
"""A forwarded record's message is cut to this many characters (its start is kept)."""

MAX_TRACEBACK_CHARS = 16_000
"""A forwarded record's traceback is cut to this many characters (its end is kept)."""

_FALLBACK_FORMAT = "%(levelname)s:%(name)s:%(message)s"


class _Sender(Protocol):
    def send(self, message: ServiceMessage) -> bool: ...


LevelSnapshot = dict[str, int]
"""``{logger name: level}``: ``""`` is the root, ``"*disable*"`` ``logging.disable``."""

_DISABLE_KEY = "*disable*"


def logging_levels() -> LevelSnapshot:
    """This process's logging thresholds now: the root's level, every logger whose
    level was set, and the ``logging.disable`` level."""
    manager = logging.root.manager
    levels: LevelSnapshot = {"": logging.root.level}
    for name, item in list(manager.loggerDict.items()):
        if isinstance(item, logging.Logger) and item.level != logging.NOTSET:
            levels[name] = item.level
    levels[_DISABLE_KEY] = manager.disable
    return levels


def _cut_start(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters cut)"


def _cut_end(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"… ({len(text) - limit} earlier characters cut)\n{text[-limit:]}"


class LinkLogHandler(logging.Handler):
    """In a process agent: sends each record to the orchestrator over ``link``.

    Once the link is closed (the agent is ending), a record is written to stderr in
    ``logging.basicConfig``'s format instead, with the agent's name.
    """

    def __init__(self, agent: str, link: _Sender) -> None:
        super().__init__()
        self.agent = agent
        self.link = link
        self._formatter = logging.Formatter()

    def payload(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record as plain, bounded data."""
        try:
            message = record.getMessage()
        except Exception as exc:  # the user's arguments do not fit the format
            message = f"{record.msg!r} % {record.args!r} ({type(exc).__name__})"
        trace = ""
        if record.exc_info:
            trace = self._formatter.formatException(record.exc_info)
        elif record.exc_text:
            trace = record.exc_text
        if record.stack_info:
            trace = f"{trace}\n{record.stack_info}" if trace else record.stack_info
        return {
            "name": record.name,
            "levelno": record.levelno,
            "levelname": record.levelname,
            "message": _cut_start(message, MAX_MESSAGE_CHARS),
            "exc_text": _cut_end(trace, MAX_TRACEBACK_CHARS) if trace else None,
            "created": record.created,
            "msecs": record.msecs,
            "pathname": record.pathname,
            "filename": record.filename,
            "module": record.module,
            "lineno": record.lineno,
            "funcName": record.funcName,
            "threadName": record.threadName,
            "processName": record.processName,
            "process": record.process,
        }

    def emit(self, record: logging.LogRecord) -> None:
        try:
            payload = self.payload(record)
            if self.link.send(ServiceMessage(self.agent, MessageType.LOG, payload)):
                return
            line = make_record(self.agent, payload)
            text = logging.Formatter(_FALLBACK_FORMAT).format(line)
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except RecursionError:  # pragma: no cover - as logging's own handlers
            raise
        except Exception:
            self.handleError(record)


def forward_logging(agent: str, link: _Sender, levels: LevelSnapshot | None) -> None:
    """In a process agent: send every record to the orchestrator (see the module).

    Replaces the root logger's handlers with a :class:`LinkLogHandler` and applies
    ``levels`` (the orchestrator's, from :func:`logging_levels`).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(LinkLogHandler(agent, link))
    if levels is None:
        return
    for name, level in levels.items():
        if name == _DISABLE_KEY:
            logging.disable(level)
        elif name == "":
            root.setLevel(level)
        else:
            logging.getLogger(name).setLevel(level)


def make_record(agent: str, payload: dict[str, Any]) -> logging.LogRecord:
    """A record of this process made from a forwarded ``payload`` (see the module)."""
    data = dict(payload)
    message = str(data.pop("message", ""))
    data["msg"] = f"[{agent}] {message}"
    data["args"] = None
    data["exc_info"] = None
    data["stack_info"] = None
    data["agent"] = agent
    return logging.makeLogRecord(data)


class LogRelay:
    """Logs forwarded records again in this process, on one thread of its own.

    :meth:`submit` never waits: the router calls it. The thread starts on the first
    record and ends with :meth:`close`.

    Args:
        name: the orchestrator's name, for the thread's name.
    """

    MAX_PENDING = 10_000
    """Records that may wait for the thread; more are dropped and counted."""

    MAX_PENDING_CHARS = 8_000_000
    """Characters (messages and tracebacks) that may wait for the thread, so long
    records cannot fill memory before :data:`MAX_PENDING` is reached."""

    def __init__(self, name: str = "orchestrator") -> None:
        self._name = name
        self._pending: collections.deque[tuple[str, dict[str, Any]]] = (
            collections.deque()
        )
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._chars = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._dropped: collections.Counter[str] = collections.Counter()
        self.relayed = 0
        self.dropped = 0

    def submit(self, agent: str, payload: object) -> bool:
        """Queue one record of ``agent``; ``False`` if it was dropped (full, closed
        or not a record)."""
        if not isinstance(payload, dict):
            return False
        with self._lock:
            if self._closed:
                return False
            size = _size(payload)
            if (
                len(self._pending) >= self.MAX_PENDING
                or self._chars + size > self.MAX_PENDING_CHARS
            ):
                self._dropped[agent] += 1
                self.dropped += 1
                return False
            self._chars += size
            self._pending.append((agent, payload))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run,
                    name=f"pyorchestrate-logs-{self._name}",
                    daemon=True,
                )
                self._thread.start()
            self._ready.notify()
        return True

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed and not self._dropped:
                    self._ready.wait()
                if not self._pending:
                    dropped, self._dropped = self._dropped, collections.Counter()
                    closed = self._closed
                    item = None
                else:
                    item = self._pending.popleft()
                    self._chars -= _size(item[1])
                    dropped = collections.Counter()
                    closed = False
            if item is not None:
                self._emit(*item)
                continue
            if dropped:
                logger.warning(
                    "dropped %d log record(s) of agents (%s): the orchestrator's "
                    "logging could not keep up (at most %d wait)",
                    sum(dropped.values()),
                    ", ".join(f"{name}: {n}" for name, n in sorted(dropped.items())),
                    self.MAX_PENDING,
                )
            if closed:
                return

    def _emit(self, agent: str, payload: dict[str, Any]) -> None:
        try:
            record = make_record(agent, payload)
            target = logging.getLogger(record.name)
            if not target.disabled:
                target.handle(record)
            self.relayed += 1
        except Exception:
            logger.exception("agent %r: a forwarded log record failed", agent)

    def close(self, timeout: float = 2.0) -> bool:
        """Log what waits (for up to ``timeout`` seconds), then stop the thread;
        return whether it ended. Records that did not make it are counted as dropped
        (and logged). Idempotent."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closed = True
            thread = self._thread
            self._ready.notify()
        if thread is None:
            return True
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            with self._lock:
                lost = len(self._pending)
                self._pending.clear()
                self._chars = 0
            if lost:
                with contextlib.suppress(Exception):
                    logger.warning(
                        "dropped %d log record(s) of agents at shutdown: the "
                        "orchestrator's logging did not take them within %.1f s",
                        lost,
                        timeout,
                    )
            thread.join(0.5)
        return not thread.is_alive()


def _size(payload: dict[str, Any]) -> int:
    """A forwarded record's weight: its message and traceback, in characters."""
    size = 0
    for key in ("message", "exc_text"):
        value = payload.get(key)
        if isinstance(value, str):
            size += len(value)
    return size
