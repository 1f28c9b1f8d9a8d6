"""The command server: newline-delimited JSON over a Unix socket, on one thread.

One ``pyorchestrate-control-<name>`` thread runs a selector over the listening socket
and every connection. It reads lines, answers malformed, unknown and forbidden
requests itself, and hands the rest to a few worker threads; each request has a
deadline, after which the server answers 500 and forgets it, so no command can hang
the server or starve another client. Replies go only to the requesting connection.
``subscribe`` turns a connection into an event stream fed from the history; ``logs``
into a stream of an agent's output, read by the server's :class:`LogStreamer` on its
own thread (the selector thread never touches a file).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import selectors
import socket
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import (
    CommandFailed,
    Conflict,
    ControlError,
    LifecycleError,
    ProtocolError,
)
from ..utilities.event import EventRecord
from .commands import SUBSCRIBE_FILTERS, parse_filters
from .execute import Caller, check_command, execute
from .logquery import parse_log_query
from .logstream import LogStream, LogStreamer
from .paths import MAX_SOCKET_PATH, default_socket_dir
from .protocol import (
    MAX_LINE_BYTES,
    Request,
    encode,
    error_reply,
    event_line,
    parse_request,
    success_reply,
)
from .target import ControlTarget

__all__ = ["CommandServer", "prepare_socket_path"]

logger = logging.getLogger("pyorchestrate.control")

_MAX_OUTBOX = 8 * 1_048_576  # a subscriber further behind than this is dropped
_MAX_CONNECTIONS = 128


def prepare_socket_path(path: str) -> None:
    """Make ``path`` ready to bind: private directory, stale socket removed.

    Raises:
        LifecycleError: the path is too long, is not a socket, or a live server
            answers there.
    """
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise LifecycleError(
            f"command_socket_path is {len(os.fsencode(path))} bytes long; a Unix "
            f"socket path must be at most {MAX_SOCKET_PATH}: {path}"
        )
    target = Path(path)
    parent = target.parent
    if parent == default_socket_dir():
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = parent.stat()
        if info.st_uid != os.getuid():
            raise LifecycleError(
                f"{parent} belongs to another user; refusing to use it"
            )
        if stat.S_IMODE(info.st_mode) != 0o700:
            parent.chmod(0o700)
    else:
        parent.mkdir(parents=True, exist_ok=True)
    if not os.path.lexists(target):
        return
    if not stat.S_ISSOCK(target.lstat().st_mode):
        raise LifecycleError(f"command_socket_path {path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        logger.info("removing stale socket %s", path)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        return
    except OSError as exc:
        raise LifecycleError(f"cannot check command socket {path}: {exc}") from None
    finally:
        probe.close()
    raise LifecycleError(
        f"another orchestrator is already listening on {path}; stop it or choose "
        "another command_socket_path"
    )


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    inbox: bytearray = field(default_factory=bytearray)
    outbox: bytearray = field(default_factory=bytearray)
    pending: int = 0
    closing: bool = False
    read_closed: bool = False
    subscription: dict[str, Any] | None = None
    subscription_id: str | None = None
    log_stream: LogStream | None = None
    registered: bool = True


@dataclass(eq=False)
class _Pending:
    conn: _Conn
    request: Request
    deadline: float
    done: bool = False


class CommandServer:
    """Serves the control commands of one orchestrator on a Unix socket.

    Args:
        target: what the commands act on (the orchestrator).
        path: the socket path.
        allowed: the commands this server accepts.
        timeout: seconds a command has to produce its reply.
        workers: threads that run commands.
        max_log_streams: ``logs`` streams served at once (one more gets a 409).
    """

    def __init__(
        self,
        target: ControlTarget,
        path: str,
        allowed: frozenset[str],
        *,
        timeout: float = 5.0,
        workers: int = 4,
        max_line: int = MAX_LINE_BYTES,
        max_log_streams: int = 64,
        log_poll_interval: float = 0.2,
    ) -> None:
        self._target = target
        self._history = target.history
        self.path = path
        self.allowed = allowed
        self.timeout = timeout
        self.max_line = max_line
        self._name = target.name
        self._workers = workers
        self._selector = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._completed: queue.SimpleQueue[tuple[_Pending, dict[str, Any]]] = (
            queue.SimpleQueue()
        )
        self._events: queue.SimpleQueue[EventRecord] = queue.SimpleQueue()
        self._pending: list[_Pending] = []
        self._log_out: queue.SimpleQueue[tuple[LogStream, bytes, bool]] = (
            queue.SimpleQueue()
        )
        self._log_conns: dict[LogStream, _Conn] = {}
        self._streamer = LogStreamer(
            target,
            sender=self._name,
            deliver=self._on_log_data,
            poll_interval=log_poll_interval,
            max_streams=max_log_streams,
        )
        self._conns: dict[socket.socket, _Conn] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._stopping = False
        self._closed = False
        self._inode: int | None = None
        self.requests = 0
        self.errors = 0

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Bind the socket (0600) and start the server thread.

        Raises:
            LifecycleError: already started, or the socket cannot be used.
        """
        if self._thread is not None:
            raise LifecycleError("the command server is already started")
        prepare_socket_path(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(self.path)
        except OSError as exc:
            listener.close()
            raise LifecycleError(
                f"cannot bind command socket {self.path}: {exc}"
            ) from None
        finally:
            os.umask(old_umask)
        Path(self.path).chmod(0o600)
        self._inode = Path(self.path).stat().st_ino
        listener.listen(socket.SOMAXCONN)  # bursts of clients wait, not fail
        listener.setblocking(False)
        self._listener = listener
        self._selector.register(listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._executor = ThreadPoolExecutor(
            self._workers,
            thread_name_prefix=f"pyorchestrate-control-{self._name}-worker",
        )
        self._thread = threading.Thread(
            target=self._run, name=f"pyorchestrate-control-{self._name}", daemon=True
        )
        self._thread.start()
        logger.info("command interface listening on %s", self.path)

    def stop(self, timeout: float = 2.0) -> bool:
        """Flush replies, close every connection, remove the socket file.

        Returns whether the server thread ended. Idempotent.
        """
        if self._closed:
            return True
        # The log streams end first (each with what its files hold and a LOG_END):
        # the loop below still runs and queues their last lines before the flush.
        streamer_ended = self._streamer.close(timeout)
        self._stopping = True
        self._wake()
        ended = True
        if self._thread is not None:
            self._thread.join(timeout)
            ended = not self._thread.is_alive()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            deadline = time.monotonic() + timeout
            for thread in list(getattr(self._executor, "_threads", ())):
                thread.join(max(deadline - time.monotonic(), 0))
        if ended:
            self._close_all()
        return ended and streamer_ended

    @property
    def log_streams(self) -> int:
        """``logs`` streams being served now (followers included)."""
        return self._streamer.open_streams

    def _close_all(self) -> None:
        self._closed = True
        for conn in list(self._conns.values()):
            self._drop(conn)
        if self._listener is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(self._listener)
            self._listener.close()
        with contextlib.suppress(OSError):
            info = Path(self.path).stat()
            if info.st_ino == self._inode:  # never remove another server's socket
                Path(self.path).unlink()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"w")

    # ------------------------------------------------------------ the loop
    def _run(self) -> None:
        deadline_flush: float | None = None
        while True:
            if self._stopping:
                if deadline_flush is None:
                    deadline_flush = time.monotonic() + 1.0
                    if self._listener is not None:
                        with contextlib.suppress(KeyError, ValueError):
                            self._selector.unregister(self._listener)
                # In-flight requests count too: a `shutdown` reply is made after
                # its handler has already set the orchestrator stopping.
                unsent = (
                    bool(self._pending)
                    or not self._log_out.empty()
                    or any(c.outbox for c in self._conns.values())
                )
                if not unsent or time.monotonic() > deadline_flush:
                    return
            timeout = self._next_timeout()
            try:
                ready = self._selector.select(timeout)
            except OSError:
                logger.exception("command server: select failed")
                continue
            try:
                for key, mask in ready:
                    self._on_ready(key, mask)
                self._collect_completed()
                self._collect_logs()
                self._push_events()
                self._expire()
            except Exception:
                logger.exception("command server: unexpected error (continuing)")

    def _next_timeout(self) -> float:
        if self._stopping:
            return 0.05
        if not self._pending:
            return 1.0
        soonest = min(p.deadline for p in self._pending)
        return max(0.0, min(1.0, soonest - time.monotonic()))

    def _on_ready(self, key: selectors.SelectorKey, mask: int) -> None:
        if key.fileobj is self._listener:
            self._accept()
            return
        if key.fileobj == self._wake_r:
            with contextlib.suppress(BlockingIOError, OSError):
                while os.read(self._wake_r, 4096):
                    pass
            return
        conn: _Conn = key.data
        if mask & selectors.EVENT_READ:
            self._read(conn)
        if mask & selectors.EVENT_WRITE and conn.sock in self._conns:
            self._flush(conn)

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                logger.exception("command server: accept failed")
                return
            if len(self._conns) >= _MAX_CONNECTIONS:
                logger.warning("command server: too many connections; refusing one")
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Conn(sock)
            self._conns[sock] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: _Conn) -> None:
        try:
            chunk = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        if not chunk:
            conn.read_closed = True
            if conn.log_stream is not None and conn.log_stream.query.follow:
                self._drop(conn)  # a follower hung up: its stream ends now
                return
            self._finish_or_close(conn)
            return
        conn.inbox += chunk
        while not conn.closing:
            newline = conn.inbox.find(b"\n")
            if newline < 0:
                if len(conn.inbox) > self.max_line:
                    self._too_long(conn)
                return
            if newline > self.max_line:
                self._too_long(conn)
                return
            line = bytes(conn.inbox[:newline]).strip()
            del conn.inbox[: newline + 1]
            if line:
                self._dispatch(conn, line)

    def _too_long(self, conn: _Conn) -> None:
        conn.inbox.clear()
        error = ProtocolError(f"request line longer than {self.max_line} bytes")
        self._reply(conn, error_reply(None, error, sender=self._name))
        conn.closing = True
        self._finish_or_close(conn)

    def _dispatch(self, conn: _Conn, line: bytes) -> None:
        self.requests += 1
        request_id: str | None = None
        try:
            request = parse_request(line)
            request_id = request.request_id
            command = check_command(request.command, request.args, self.allowed)
            if request.command == "subscribe":
                self._subscribe(conn, request)
                return
            if request.command == "logs":
                self._logs(conn, request)
                return
        except ControlError as error:
            if request_id is None:
                request_id = error.data.pop("request_id", None)
            self.errors += 1
            self._reply(conn, error_reply(request_id, error, sender=self._name))
            return
        assert self._executor is not None
        pending = _Pending(conn, request, time.monotonic() + self.timeout)
        conn.pending += 1
        self._pending.append(pending)
        caller = Caller.of(request.sender, meta=request.meta)
        try:
            future = self._executor.submit(
                execute, self._target, command, list(request.args), caller
            )
        except RuntimeError:  # the executor is shutting down
            self._complete(pending, CommandFailed("the orchestrator is shutting down"))
            return
        future.add_done_callback(lambda f: self._on_done(pending, f))

    def _on_done(self, pending: _Pending, future: Future[dict[str, Any]]) -> None:
        # Runs on a worker thread: hand the outcome to the server thread.
        try:
            data = future.result()
            reply = success_reply(pending.request.request_id, data, sender=self._name)
        except ControlError as error:
            reply = error_reply(pending.request.request_id, error, sender=self._name)
        except BaseException as exc:  # every failure becomes a reply
            logger.exception("command %r failed", pending.request.command)
            failure = CommandFailed(f"{type(exc).__name__}: {exc}")
            reply = error_reply(pending.request.request_id, failure, sender=self._name)
        self._completed.put((pending, reply))
        self._wake()

    def _collect_completed(self) -> None:
        while True:
            try:
                pending, reply = self._completed.get_nowait()
            except queue.Empty:
                return
            if pending.done:
                continue  # it already timed out
            if reply["payload"]["status"] == "error":
                self.errors += 1
            self._finish_pending(pending, reply)

    def _complete(self, pending: _Pending, error: ControlError) -> None:
        self.errors += 1
        reply = error_reply(pending.request.request_id, error, sender=self._name)
        self._finish_pending(pending, reply)

    def _finish_pending(self, pending: _Pending, reply: dict[str, Any]) -> None:
        pending.done = True
        with contextlib.suppress(ValueError):
            self._pending.remove(pending)
        conn = pending.conn
        conn.pending -= 1
        if conn.sock in self._conns:
            self._reply(conn, reply)
            self._finish_or_close(conn)

    def _expire(self) -> None:
        now = time.monotonic()
        for pending in [p for p in self._pending if p.deadline <= now]:
            error = CommandFailed(
                f"command {pending.request.command!r} did not finish within "
                f"{self.timeout:g} s"
            )
            logger.error("%s", error.message)
            self._complete(pending, error)

    # ------------------------------------------------------------ output
    def _reply(self, conn: _Conn, message: dict[str, Any]) -> None:
        if conn.sock not in self._conns:
            return
        conn.outbox += encode(message)
        self._flush(conn)

    def _flush(self, conn: _Conn) -> None:
        while conn.outbox:
            try:
                sent = conn.sock.send(conn.outbox)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._drop(conn)
                return
            del conn.outbox[:sent]
        stream = conn.log_stream
        if stream is not None:
            stream.delivered = stream.collected - len(conn.outbox)
            if stream.paused and stream.unsent < self._streamer.max_unsent // 2:
                stream.paused = False
                self._streamer.wake()
        self._finish_or_close(conn)

    def _finish_or_close(self, conn: _Conn) -> None:
        """Select what ``conn`` waits for now, or close it when it is done."""
        if conn.sock not in self._conns:
            return
        want = 0
        if not conn.read_closed and not conn.closing:
            want |= selectors.EVENT_READ
        if conn.outbox:
            want |= selectors.EVENT_WRITE
        if not want:
            finished = conn.closing or (
                conn.read_closed
                and not conn.pending
                and conn.subscription is None
                and conn.log_stream is None
            )
            if finished:
                self._drop(conn)
                return
            if conn.registered:  # waiting for a reply with nothing to select on
                self._selector.unregister(conn.sock)
                conn.registered = False
            return
        if conn.registered:
            self._selector.modify(conn.sock, want, conn)
        else:
            self._selector.register(conn.sock, want, conn)
            conn.registered = True

    def _drop(self, conn: _Conn) -> None:
        if self._conns.pop(conn.sock, None) is None:
            return
        if conn.log_stream is not None:
            self._streamer.cancel(conn.log_stream)
            self._log_conns.pop(conn.log_stream, None)
            conn.log_stream = None
        if conn.registered:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn.sock)
        conn.sock.close()

    # ------------------------------------------------------------ subscribe
    def _subscribe(self, conn: _Conn, request: Request) -> None:
        filters = parse_filters(request.args, SUBSCRIBE_FILTERS)
        if self._unsubscribe is None:
            _, self._unsubscribe = self._history.subscribe(self._on_record)
        backlog: list[EventRecord] = []
        if "after_seq" in filters:
            backlog = self._history.last(
                self._history.max_events,
                after_seq=filters["after_seq"],
            )
        conn.subscription = filters
        conn.subscription_id = request.request_id
        # Records up to _last_position are not sent again; the backlog advances it.
        # A heartbeat carries the seq of the record before it and comes after it.
        seen = filters.get("after_seq", self._history.last_seq)
        conn.subscription["_last_position"] = (seen, False, 0)
        self._reply(
            conn,
            success_reply(
                request.request_id,
                {
                    "subscribed": True,
                    "filters": {k: v for k, v in filters.items() if k[0] != "_"},
                    "backlog": len(backlog),
                },
                sender=self._name,
            ),
        )
        for record in backlog:
            self._send_event(conn, record)

    def _on_record(self, record: EventRecord) -> None:
        # Called with the history's lock held, on whatever thread recorded: only queue.
        self._events.put(record)
        self._wake()

    def _push_events(self) -> None:
        while True:
            try:
                record = self._events.get_nowait()
            except queue.Empty:
                return
            for conn in list(self._conns.values()):
                if conn.subscription is not None:
                    self._send_event(conn, record)

    def _send_event(self, conn: _Conn, record: EventRecord) -> None:
        wanted = conn.subscription
        if wanted is None:
            return
        position = self._history.position(record)
        if position <= wanted["_last_position"]:
            return
        if wanted.get("agent") not in (None, record.agent):
            return
        name = wanted.get("event_name")
        if name is not None and name.lower() != record.event_name.lower():
            return
        wanted["_last_position"] = position
        if len(conn.outbox) > _MAX_OUTBOX:
            logger.warning(
                "subscriber fell %d bytes behind: disconnecting", len(conn.outbox)
            )
            self._drop(conn)
            return
        message = event_line(
            record.to_dict(), request_id=conn.subscription_id, sender=self._name
        )
        self._reply(conn, message)

    # ------------------------------------------------------------ logs
    def _logs(self, conn: _Conn, request: Request) -> None:
        query = parse_log_query(request.args)
        if conn.log_stream is not None:
            raise Conflict(
                "this connection is already streaming logs; open another connection"
            )
        stream = LogStream(query, request.request_id)
        self._streamer.open(stream)  # Conflict when busy
        conn.log_stream = stream
        self._log_conns[stream] = conn

    def _on_log_data(self, stream: LogStream, data: bytes, finished: bool) -> None:
        # Called on the streamer's thread: only queue.
        self._log_out.put((stream, data, finished))
        self._wake()

    def _collect_logs(self) -> None:
        while True:
            try:
                stream, data, finished = self._log_out.get_nowait()
            except queue.Empty:
                return
            conn = self._log_conns.get(stream)
            if conn is None or conn.sock not in self._conns:
                continue  # its connection is gone (and the stream cancelled)
            if finished:
                del self._log_conns[stream]
                conn.log_stream = None
            conn.outbox += data
            stream.collected += len(data)
            self._flush(conn)
