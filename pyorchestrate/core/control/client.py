"""``ControlClient``: talk to a running orchestrator over its Unix socket.

Standard library only (the CLI imports it and must start fast)::

    with ControlClient("/run/user/1000/pyorchestrate/Orchestrator.sock") as client:
        for agent in client.ps()["agents"]:
            print(agent["name"], agent["lifecycle_state"])
        client.restart("worker")

Errors are typed: :class:`ControlUnavailable` (nothing answers: the message names the
socket path tried), :class:`ControlTimeout`, and for error replies the
:class:`ControlError` subclass of their code (``AgentNotFound`` for 404, …).
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import struct
import time
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

from .. import errors
from ..errors import ControlError, ControlTimeout, ControlUnavailable, ProtocolError
from .logquery import DEFAULT_LINES, LOG_STREAMS, LogStreamName, build_log_query
from .paths import default_socket_path, private_sockets
from .protocol import build_request, encode, parse_reply

__all__ = [
    "ControlClient",
    "LogLines",
    "SeveralOrchestrators",
    "discover",
    "live_sockets",
    "resolve_socket_path",
]


class SeveralOrchestrators(ControlUnavailable):
    """More than one orchestrator answers in the private directory, none was chosen.

    ``data["sockets"]`` lists their socket paths; the message names each one.
    """

    def __init__(
        self, message: str = "", *, data: dict[str, Any] | None = None
    ) -> None:
        sockets = list((data or {}).get("sockets", []))
        if not message:
            names = [Path(path).stem for path in sockets]
            width = max(map(len, names), default=0)
            listed = "".join(
                f"\n  --name {name:<{width}}  ({path})"
                for name, path in zip(names, sockets, strict=True)
            )
            message = (
                f"{len(sockets)} orchestrators are running; choose one with "
                f"--name NAME or --socket PATH:{listed}"
            )
        super().__init__(message, data={"sockets": sockets})


def _answers(path: str | os.PathLike[str], timeout: float = 0.5) -> bool:
    """Whether something accepts a connection on ``path`` (no request is sent)."""
    try:
        _connected(os.fspath(path), timeout).close()
    except OSError:
        return False
    return True


def _connected(path: str, timeout: float) -> socket.socket:
    """A socket connected to ``path``, with ``timeout`` for what follows.

    The connect itself blocks, bounded by ``SO_SNDTIMEO``: when the server's listen
    queue is full (a burst of clients, a busy machine) the kernel waits for room up to
    ``timeout`` instead of refusing at once with EAGAIN, which a socket in timeout
    mode would do.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        seconds = int(timeout)
        wait = struct.pack("ll", seconds, int((timeout - seconds) * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, wait)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    sock.settimeout(timeout)
    return sock


def live_sockets() -> list[str]:
    """The sockets in this user's private directory that accept a connection."""
    return [str(path) for path in private_sockets() if _answers(path)]


_BY_NAME: dict[str, type[ControlError]] = {
    cls.__name__: cls
    for cls in (
        errors.ProtocolError,
        errors.UnknownCommand,
        errors.CommandForbidden,
        errors.AgentNotFound,
        errors.Conflict,
        errors.CommandFailed,
    )
}
_BY_CODE: dict[int, type[ControlError]] = {
    400: errors.UnknownCommand,
    403: errors.CommandForbidden,
    404: errors.AgentNotFound,
    409: errors.Conflict,
    500: errors.CommandFailed,
}


def resolve_socket_path(
    path: str | os.PathLike[str] | None = None, *, name: str | None = None
) -> str:
    """The socket to use: ``path``; else the orchestrator called ``name`` in this
    user's private directory; else ``$PYORCHESTRATE_SOCKET``; else the one that runs.

    With neither, the private directory decides: the only socket there that accepts a
    connection is used; with none live, ``Orchestrator.sock`` (the default name), or
    the only socket file there, so the connection error names the path tried.

    Raises:
        SeveralOrchestrators: several sockets there are live (it lists them).
    """
    if path:
        return os.fspath(path)
    if name:
        return default_socket_path(name)
    env = os.environ.get("PYORCHESTRATE_SOCKET")
    if env:
        return env
    live = live_sockets()
    if len(live) == 1:
        return live[0]
    if live:
        raise SeveralOrchestrators(data={"sockets": live})
    default = default_socket_path("Orchestrator")
    if not Path(default).exists():
        found = private_sockets()
        if len(found) == 1:
            return str(found[0])
    return default


def discover(timeout: float = 1.0) -> list[dict[str, Any]]:
    """Every socket in this user's private directory, with who answers on it.

    Each item: ``socket``, ``name`` (the orchestrator's, else the file's stem),
    ``state`` (``live``; ``stale`` when nobody accepts a connection; ``no reply``
    when the connection is accepted but ``status`` is not answered), and for live
    ones ``pid``, ``agents`` and ``uptime`` (seconds).
    """
    found: list[dict[str, Any]] = []
    for path in private_sockets():
        item: dict[str, Any] = {
            "name": path.stem,
            "socket": str(path),
            "state": "stale",
            "pid": None,
            "agents": None,
            "uptime": None,
        }
        found.append(item)
        if not _answers(path, timeout):
            continue
        try:
            with ControlClient(path, timeout=timeout, sender="cli") as client:
                status = client.status()
        except ControlUnavailable:
            continue
        except ControlTimeout:
            item["state"] = "no reply"
            continue
        except ControlError:  # answers, but may not say (status not allowed)
            item["state"] = "live"
            continue
        item.update(
            state="live",
            name=status.get("name", path.stem),
            pid=status.get("pid"),
            agents=status.get("total_agents"),
            uptime=status.get("uptime"),
        )
    return found


class ControlClient:
    """A connection to one orchestrator's command socket.

    Args:
        socket_path: the socket (see :func:`resolve_socket_path` for the default).
        timeout: seconds to wait for connecting and for each reply.
        sender: how this client names itself in requests (the ``source`` of the
            audit events of its actions: the CLI says ``cli``).
        name: the orchestrator's name, to find its socket in the private directory
            (when ``socket_path`` is not given).
        meta: sent with every request (``{"actor": "alice"}``: who acts, kept with
            the audit events).

    Raises:
        SeveralOrchestrators: neither ``socket_path`` nor ``name`` is given and
            several orchestrators run.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str] | None = None,
        *,
        timeout: float = 5.0,
        sender: str = "client",
        name: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.socket_path = resolve_socket_path(socket_path, name=name)
        self.timeout = timeout
        self.sender = sender
        self.meta: dict[str, Any] = dict(meta or {})
        self._sock: socket.socket | None = None
        self._buffer = bytearray()

    # ------------------------------------------------------------ connection
    def connect(self) -> None:
        """Connect now (requests connect on first use anyway).

        Raises:
            ControlUnavailable: nothing answers on the socket.
        """
        if self._sock is not None:
            return
        try:
            sock = _connected(self.socket_path, self.timeout)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ControlUnavailable(
                f"Cannot connect to an orchestrator at {self.socket_path} "
                f"({exc.strerror or exc}). Is it running with the command interface "
                "enabled? Pass --socket PATH or --name NAME, or set "
                "PYORCHESTRATE_SOCKET; `pyorchestrate list` shows what runs."
            ) from None
        except PermissionError:
            raise ControlUnavailable(
                f"Permission denied on {self.socket_path}: the socket belongs to "
                "another user."
            ) from None
        except BlockingIOError:
            raise ControlUnavailable(
                f"The orchestrator at {self.socket_path} is busy: its queue of new "
                f"connections stayed full for {self.timeout:g} s."
            ) from None
        except OSError as exc:
            raise ControlUnavailable(
                f"Cannot connect to {self.socket_path}: {exc}"
            ) from None
        self._sock = sock
        self._buffer.clear()

    def close(self) -> None:
        """Close the connection. Idempotent."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_line(self, deadline: float | None) -> bytes:
        assert self._sock is not None
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                return line
            if deadline is None:
                self._sock.settimeout(None)
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self._sock.settimeout(remaining)
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("the orchestrator closed the connection")
            self._buffer += chunk

    # ------------------------------------------------------------ requests
    def request(
        self, command: str, *args: Any, meta: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send one command and return the reply's payload, errors included.

        ``meta`` goes with this request over the client's own (``{"actor": ...}``:
        who asks, kept with the audit event of an action).

        Raises:
            ControlUnavailable: cannot connect, or the connection broke.
            ControlTimeout: no reply within ``timeout``.
        """
        self.connect()
        assert self._sock is not None
        message = build_request(
            command, args, sender=self.sender, meta={**self.meta, **(meta or {})}
        )
        request_id = message["payload"]["request_id"]
        deadline = time.monotonic() + self.timeout
        try:
            self._sock.settimeout(self.timeout)
            self._sock.sendall(encode(message))
            while True:
                reply = parse_reply(self._read_line(deadline))
                payload: dict[str, Any] = reply["payload"]
                if reply.get("event_name") == "EVENT":
                    continue  # an event for a subscription on this connection
                if payload.get("request_id") in (request_id, None):
                    return payload
        except TimeoutError:
            self.close()
            raise ControlTimeout(
                f"no reply to {command!r} from {self.socket_path} within {self.timeout:g} s"
            ) from None
        except OSError as exc:
            self.close()
            raise ControlUnavailable(
                f"lost the connection to {self.socket_path}: {exc}"
            ) from None
        except ProtocolError:
            self.close()  # the stream is out of step: start afresh next time
            raise

    def call(self, command: str, *args: Any) -> dict[str, Any]:
        """Send one command and return its ``data``; raise its error as an exception.

        Raises:
            ControlError: the subclass matching the reply's error (404 →
                ``AgentNotFound``, …), with ``.data`` from the reply.
        """
        payload = self.request(command, *args)
        if payload.get("status") == "success":
            data: dict[str, Any] = payload.get("data") or {}
            return data
        raise _error_from(payload)

    # ------------------------------------------------------------ commands
    def ps(self) -> dict[str, Any]:
        """Every agent with its state."""
        return self.call("ps")

    def status(self, agent: str | None = None) -> dict[str, Any]:
        """The orchestrator's status, or one agent's."""
        return self.call("status", agent) if agent else self.call("status")

    def start(self, agent: str) -> dict[str, Any]:
        """Start (or queue) an agent."""
        return self.call("start", agent)

    def stop(self, agent: str) -> dict[str, Any]:
        """Ask an agent to stop."""
        return self.call("stop", agent)

    def ping(
        self, agent: str, *, failed: bool = False, message: str = ""
    ) -> dict[str, Any]:
        """An external job reports a run: success, or a failure (``failed``)."""
        return self.call("ping", agent, failed, message)

    def restart(self, agent: str) -> dict[str, Any]:
        """Stop an agent and start it again."""
        return self.call("restart", agent)

    def dependencies(self) -> dict[str, Any]:
        """Which agents wait for which."""
        return self.call("dependencies")

    def commands(self) -> dict[str, Any]:
        """The commands this orchestrator allows."""
        return self.call("commands")

    def stats(self) -> dict[str, Any]:
        """CPU, memory, threads and uptime per agent."""
        return self.call("stats")

    def history(
        self,
        *,
        last: int | None = None,
        agent: str | None = None,
        event_name: str | None = None,
        after_seq: int | None = None,
    ) -> dict[str, Any]:
        """Past events, oldest first."""
        filters = _filters(
            last=last, agent=agent, event_name=event_name, after_seq=after_seq
        )
        return self.call("history", filters) if filters else self.call("history")

    def history_stats(self, agent: str | None = None) -> dict[str, Any]:
        """Event counts by type."""
        filters = _filters(agent=agent)
        return (
            self.call("history-stats", filters)
            if filters
            else self.call("history-stats")
        )

    def shutdown(self) -> dict[str, Any]:
        """Ask the orchestrator to shut down (returns before it has)."""
        return self.call("shutdown")

    def subscribe(
        self,
        *,
        agent: str | None = None,
        event_name: str | None = None,
        after_seq: int | None = None,
        idle_timeout: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield events (``EventRecord.to_dict()``) as they happen, on this connection.

        With ``after_seq``, stored events after it come first. The iterator ends when
        the orchestrator closes the connection, or after ``idle_timeout`` seconds
        without an event (``None``: wait forever).
        """
        filters = _filters(agent=agent, event_name=event_name, after_seq=after_seq)
        # Subscribe now, not on the first next(): no event may slip by in between.
        self.call("subscribe", filters) if filters else self.call("subscribe")
        return self._stream(idle_timeout)

    def _stream(self, idle_timeout: float | None) -> Iterator[dict[str, Any]]:
        while True:
            deadline = None if idle_timeout is None else time.monotonic() + idle_timeout
            try:
                reply = parse_reply(self._read_line(deadline))
            except TimeoutError:
                return
            except (OSError, ConnectionResetError):
                self.close()
                return
            if reply.get("event_name") == "EVENT":
                event: dict[str, Any] = reply["payload"].get("event") or {}
                yield event

    def logs(
        self,
        agent: str,
        *,
        lines: int | None = DEFAULT_LINES,
        follow: bool = False,
        streams: tuple[LogStreamName, ...] | list[LogStreamName] = LOG_STREAMS,
        since: _dt.datetime | None = None,
    ) -> LogLines:
        """Yield process agent ``agent``'s output lines, each ``{"ts", "stream",
        "line"}``, oldest first, the streams merged in time order.

        First the newest ``lines`` lines (``None``: every stored one, or every one
        since ``since``); with ``follow``, then each new line as it is written, until
        the orchestrator shuts down or the caller stops. The connection is closed
        when the lines end or when the caller closes them (``close()``, or a ``with``
        block), started or not::

            with client.logs("backup", lines=20, follow=True) as lines:
                for entry in lines:
                    print(entry["ts"], entry["stream"], entry["line"])

        Raises:
            ControlError: the request is refused (the subclass of its code: unknown
                agent, a thread agent, forbidden, busy), when this is called.
            ControlUnavailable: the connection broke before the end (while
                iterating).
            CommandFailed: the orchestrator could not read the files (while
                iterating).
        """
        query = build_log_query(
            lines=lines, follow=follow, streams=tuple(streams), since=since
        )
        # Ask now, not on the first next(): errors come from this call.
        self.call("logs", agent, query)
        return LogLines(self, self._log_stream(follow))

    def _log_stream(self, follow: bool) -> Generator[dict[str, str], None, None]:
        try:
            while True:
                deadline = None if follow else time.monotonic() + self.timeout
                try:
                    reply = parse_reply(self._read_line(deadline))
                except TimeoutError:
                    raise ControlTimeout(
                        f"the logs from {self.socket_path} stopped for "
                        f"{self.timeout:g} s before their end"
                    ) from None
                except OSError as exc:
                    raise ControlUnavailable(
                        f"lost the connection to {self.socket_path} before the end "
                        f"of the logs: {exc}"
                    ) from None
                kind = reply.get("event_name")
                payload = reply["payload"]
                if kind == "LOG":
                    yield from payload.get("entries") or ()
                elif kind == "LOG_END":
                    if payload.get("reason") == "error":
                        raise errors.CommandFailed(
                            str(payload.get("error") or "reading the logs failed")
                        )
                    return
        finally:
            self.close()

    def reopen_logs(self) -> dict[str, Any]:
        """Ask the orchestrator to reopen its agents' output files (after logrotate
        renamed them): ``reopened`` (paths) and ``failed``."""
        return self.call("reopen-logs")

    def reload(self) -> dict[str, Any]:
        """Ask an orchestrator run from a file (``pyorchestrate run FILE``) to read it
        again: ``added``, ``removed``, ``changed``, ``unchanged``, ``warnings``.
        An invalid file raises ``CommandFailed`` (nothing changed; ``.data["errors"]``
        lists each ``{path, reason}``)."""
        return self.call("reload")


class LogLines(Iterator[dict[str, str]]):
    """The lines of one ``logs`` request (what :meth:`ControlClient.logs` returns):
    an iterator of ``{"ts", "stream", "line"}``, and a context manager whose exit, like
    :meth:`close`, closes the client's connection (the server stops the stream)."""

    def __init__(
        self, client: ControlClient, lines: Generator[dict[str, str], None, None]
    ) -> None:
        self._client = client
        self._lines = lines

    def __next__(self) -> dict[str, str]:
        return next(self._lines)

    def close(self) -> None:
        """Stop: close the connection. Idempotent."""
        self._lines.close()
        self._client.close()

    def __enter__(self) -> LogLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _filters(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _error_from(payload: dict[str, Any]) -> ControlError:
    message = str(payload.get("error") or "the command failed")
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    cls = _BY_NAME.get(str(payload.get("error_type")))
    if cls is None:
        code = payload.get("code")
        cls = (
            _BY_CODE.get(code, ControlError) if isinstance(code, int) else ProtocolError
        )
    return cls(message, data=data)
