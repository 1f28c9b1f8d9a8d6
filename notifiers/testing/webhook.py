"""A local HTTP sink for webhooks (``json://``, ``form://``) and Slack, on loopback."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from ._waiting import wait_for_items

__all__ = ["Reply", "WebhookRequest", "WebhookSink"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, body, extra headers, and a delay before it."""

    status: int = 200
    body: str = "ok"  # Slack's webhooks answer a bare "ok"; apprise checks it
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookRequest:
    """One request as the sink received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    reply: Reply

    @property
    def json(self) -> Any:
        """The body parsed as JSON (``None`` if it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def form(self) -> dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded``."""
        return dict(parse_qsl(self.body.decode("utf-8", "replace")))


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # request threads are joined by server_close()
    block_on_close = True
    sink: WebhookSink


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 5  # a client that never sends its request cannot hold stop() up
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        threading.current_thread().name = "notifiers-webhook-sink-request"
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        sink = self.server.sink
        reply = sink._next_reply()
        request = WebhookRequest(
            self.command, self.path, dict(self.headers.items()), body, reply
        )
        sink._store(request)
        if reply.delay and sink._stopping.wait(reply.delay):
            return  # stopping: drop the connection unanswered
        payload = reply.body.encode()
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up waiting (its read timeout)
            pass

    do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Keep quiet (the default writes every request to stderr)."""


class WebhookSink:
    """A ``ThreadingHTTPServer`` on ``127.0.0.1:0`` that records every request.

    Replies follow a script (``replies``, then ``script()``); when it runs out,
    ``default`` (200 ``ok``) is used. A reply's ``delay`` makes the sink "hang";
    ``stop()`` cuts such delays short and joins every thread.

    Args:
        replies: the first replies, in order (a bare ``int`` is a status code).
        default: the reply once the script is used up.
    """

    def __init__(
        self,
        replies: Iterable[Reply | int] = (),
        *,
        default: Reply | None = None,
    ) -> None:
        self.default = default or Reply()
        self.requests: list[WebhookRequest] = []
        self._script: deque[Reply] = deque()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.script(*replies)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> WebhookSink:
        """Listen on a free loopback port; return ``self``."""
        if self._server is not None:
            raise RuntimeError("the webhook sink is already running")
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.sink = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="notifiers-webhook-sink",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut delayed replies short, and join the threads."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()  # joins the request threads
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ use
    @property
    def port(self) -> int:
        """The port it listens on."""
        if self._server is None:
            raise RuntimeError("the webhook sink is not running")
        port: int = self._server.server_address[1]
        return port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def json_url(self, path: str = "/hook") -> str:
        """A ``json://`` apprise URL posting to ``path`` on the sink."""
        return f"json://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def form_url(self, path: str = "/hook") -> str:
        """A ``form://`` apprise URL posting to ``path`` on the sink."""
        return f"form://127.0.0.1:{self.port}/{path.lstrip('/')}"

    @property
    def slack_base(self) -> str:
        """Slack's webhook base on the sink (``AppriseNotifier(slack_webhook_base=)``)."""
        return f"{self.base_url}/services"

    def script(self, *replies: Reply | int) -> None:
        """Append replies to the script (an ``int`` is a status with body ``ok``)."""
        with self._cond:
            self._script.extend(
                r if isinstance(r, Reply) else Reply(status=r) for r in replies
            )

    def wait_for(self, count: int, timeout: float = 10.0) -> list[WebhookRequest]:
        """Wait until ``count`` requests arrived; return them all.

        Raises:
            TimeoutError: listing the paths seen, if they did not arrive in time.
        """
        return wait_for_items(
            self._cond,
            self.requests,
            count,
            timeout,
            what="requests",
            describe=lambda r: r.path,
        )

    # ------------------------------------------------------------ internals
    def _next_reply(self) -> Reply:
        with self._cond:
            return self._script.popleft() if self._script else self.default

    def _store(self, request: WebhookRequest) -> None:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()
