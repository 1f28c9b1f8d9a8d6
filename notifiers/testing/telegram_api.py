"""A fake Telegram Bot API on 127.0.0.1, reached through python-telegram-bot's ``base_url``.

::

    with FakeTelegramServer() as server:
        server.script(["500", "429:3", "200"])
        notifier = TelegramNotifier(TOKEN, 42, base_url=server.base_url)
        ...
        server.wait_for(1)  # the messages Telegram accepted

Replies are complete objects (``message_id``, ``date``, ``chat`` with ``type``,
``text``), so python-telegram-bot parses them like the real ones. Unscripted requests
succeed. Script tokens: ``"200"``/``"ok"``, any status (``"500"``, ``"502"``, ``"400"``,
``"401"``, ``"403"``, ``"404"``), ``"429"`` or ``"429:<seconds>"`` (flood control with
``parameters.retry_after``), ``"migrate:<new chat id>"``, ``"slow:<seconds>"`` (a
success after a delay) and ``"hang"`` (no answer until :meth:`FakeTelegramServer.release`
or :meth:`FakeTelegramServer.stop`).

It also plays the user's side of a bot that polls: :meth:`FakeTelegramServer.send_command`
queues a message with its ``bot_command`` entity, :meth:`FakeTelegramServer.press_button`
a button press (a ``callback_query``); ``getUpdates`` is a long poll that honours
``offset``, ``limit`` and ``timeout`` (an empty answer comes only when the timeout
passes, as from Telegram, so a poller never spins); a second poller of the same bot
ends the first one's poll with ``409 Conflict``, as Telegram does.
``editMessageText`` edits a message sent earlier (:meth:`FakeTelegramServer.message`
shows it), ``answerCallbackQuery`` and ``deleteWebhook`` answer ``true``.
:meth:`FakeTelegramServer.go_down` makes every request fail (``502`` by default) until
:meth:`FakeTelegramServer.come_back`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..redact import redact
from ._waiting import wait_for_items

__all__ = ["FakeTelegramServer", "TelegramReply"]

logger = logging.getLogger("notifiers.testing.telegram_api")

JSONBody = dict[str, Any]


def _error(status: int, description: str, **parameters: Any) -> JSONBody:
    body: JSONBody = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


_FOR = "_for"  # an update's addressee: "bot<token>", or None for any bot

_DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass(eq=False)
class TelegramReply:
    """One scripted answer.

    Args:
        status: the HTTP status.
        body: a JSON object, raw bytes (e.g. a non-JSON error page), or ``None`` for
            the natural answer (a success result, or Telegram's error object).
        delay: seconds to wait before answering.
        hold: wait for :meth:`FakeTelegramServer.release` (or ``stop``) before answering.
        method: the Bot API method it answers (``None``: the next request of any method).
    """

    status: int = 200
    body: JSONBody | bytes | None = None
    delay: float = 0.0
    hold: bool = False
    method: str | None = "sendMessage"
    _released: threading.Event = field(default_factory=threading.Event, repr=False)

    @classmethod
    def ok(cls, *, delay: float = 0.0) -> TelegramReply:
        """A success (after ``delay`` seconds)."""
        return cls(200, delay=delay)

    @classmethod
    def error(cls, status: int, description: str | None = None) -> TelegramReply:
        """An error reply as Telegram shapes it."""
        text = description or _DESCRIPTIONS.get(status, f"Error {status}")
        return cls(status, _error(status, text))

    @classmethod
    def retry_after(cls, seconds: int = 3) -> TelegramReply:
        """429 flood control with ``parameters.retry_after``."""
        return cls(
            429,
            _error(
                429, f"Too Many Requests: retry after {seconds}", retry_after=seconds
            ),
        )

    @classmethod
    def migrate(cls, new_chat_id: int) -> TelegramReply:
        """400 telling that the group became a supergroup with ``new_chat_id``."""
        return cls(
            400,
            _error(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=new_chat_id,
            ),
        )

    @classmethod
    def hang(cls) -> TelegramReply:
        """No answer until :meth:`FakeTelegramServer.release` (then a success)."""
        return cls(200, hold=True)

    @classmethod
    def parse(cls, spec: str | TelegramReply) -> TelegramReply:
        """A reply from a script token (see the module docstring)."""
        if isinstance(spec, TelegramReply):
            return spec
        kind, _, arg = spec.strip().lower().partition(":")
        if kind in ("ok", "200"):
            return cls.ok()
        if kind == "429" and arg:
            return cls.retry_after(int(arg))
        if kind == "429":
            return cls.retry_after()
        if kind == "migrate":
            return cls.migrate(int(arg))
        if kind == "slow":
            return cls.ok(delay=float(arg or 1.0))
        if kind == "hang":
            return cls.hang()
        if kind.isdigit():
            return cls.error(int(kind))
        raise ValueError(f"unknown reply {spec!r}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    disable_nagle_algorithm = True  # else each keep-alive request waits ~40 ms
    timeout = 30.0  # an idle connection never keeps a thread forever
    server: _Server

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake telegram: %s", redact(format % args))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # FakeTelegramServer joins its own threads

    def __init__(self, fake: FakeTelegramServer, host: str) -> None:
        self.fake = fake
        super().__init__((host, 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.fake._spawn(self, request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        logger.debug("fake telegram: connection error: %r", exc)


class FakeTelegramServer:
    """A local Bot API: records messages, answers ``getMe``, plays a script of replies.

    Thread-safe. ``start()``/``stop()`` or use it as a context manager; ``stop()``
    releases held replies, closes connections and joins every thread it started.

    Args:
        host: the loopback address to listen on.
        hold_timeout: the longest a held (``"hang"``) reply waits for ``release()``.
    """

    def __init__(self, *, host: str = "127.0.0.1", hold_timeout: float = 30.0) -> None:
        self.host = host
        self.hold_timeout = hold_timeout
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._script: deque[TelegramReply] = deque()
        self._held: list[TelegramReply] = []
        self._messages: list[dict[str, Any]] = []
        self._requests: list[dict[str, Any]] = []
        self._connections = 0
        self._conn_threads: set[threading.Thread] = set()
        self._sockets: dict[socket.socket, int] = {}
        self._message_ids = 0
        self._sent: dict[int, JSONBody] = {}  # message_id -> the Message object
        self._edits: list[dict[str, Any]] = []
        self._updates: list[JSONBody] = []
        self._update_ids = 0
        self._callback_ids = 0
        self._pollers: dict[str, int] = {}  # token -> the newest poll's number
        self._polls = 0
        self._waiting = 0  # long polls waiting now
        self._down: int | None = None
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> FakeTelegramServer:
        """Listen on a free port and serve from a thread; returns ``self``."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server(self, self.host)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-telegram-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close connections, join every thread (idempotent)."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()
        self.release()
        with self._changed:
            self._changed.notify_all()  # long polls end
        httpd.shutdown()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._conn_threads)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for conn in threads:
            conn.join(max(0.0, deadline - time.monotonic()))
        httpd.server_close()
        thread.join(max(0.0, deadline - time.monotonic()))
        self._httpd = self._thread = None
        alive = [t.name for t in [*threads, thread] if t.is_alive()]
        if alive:
            raise RuntimeError(f"fake telegram threads did not stop: {alive}")

    def __enter__(self) -> FakeTelegramServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ public
    @property
    def port(self) -> int:
        """The port it listens on."""
        if self._httpd is None:
            raise RuntimeError("the fake Telegram server is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The ``base_url`` for ``telegram.Bot`` (the token is appended to it)."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The messages accepted (answered with success): ``chat_id``, ``text``,
        ``parse_mode`` and the other form fields, as sent."""
        with self._lock:
            return [dict(m) for m in self._messages]

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request: ``method``, ``fields``, ``status`` answered, ``connection``."""
        with self._lock:
            return [dict(r) for r in self._requests]

    @property
    def connections(self) -> int:
        """How many TCP connections were accepted."""
        with self._lock:
            return self._connections

    def queue_reply(
        self,
        status: int = 200,
        body: JSONBody | bytes | None = None,
        *,
        delay: float = 0.0,
        hold: bool = False,
        method: str | None = "sendMessage",
    ) -> TelegramReply:
        """Answer the next ``method`` request with this (after earlier scripted ones)."""
        if body is None and status != 200:
            body = TelegramReply.error(status).body
        reply = TelegramReply(status, body, delay=delay, hold=hold, method=method)
        return self.script([reply])[0]

    def script(self, replies: Iterable[str | TelegramReply]) -> list[TelegramReply]:
        """Queue replies, e.g. ``["500", "429:3", "200"]`` (see the module docstring)."""
        parsed = [TelegramReply.parse(r) for r in replies]
        with self._lock:
            self._script.extend(parsed)
            self._held.extend(r for r in parsed if r.hold)
        return parsed

    def release(self) -> int:
        """Let every held reply (queued or waiting) answer; returns how many."""
        with self._lock:
            held, self._held = self._held, []
        for reply in held:
            reply._released.set()
        return len(held)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` messages were accepted; return them all.

        Raises:
            TimeoutError: listing what arrived, if they did not in time.
        """
        found = wait_for_items(
            self._changed,
            self._messages,
            count,
            timeout,
            what="messages",
            describe=lambda m: m["text"][:40],
        )
        return [dict(m) for m in found]

    def wait_for_requests(
        self, count: int, timeout: float = 10.0, *, method: str = "sendMessage"
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` ``method`` requests arrived (answered or not)."""

        def matching() -> list[dict[str, Any]]:
            return [r for r in self._requests if r["method"] == method]

        with self._changed:
            if not self._changed.wait_for(lambda: len(matching()) >= count, timeout):
                raise TimeoutError(
                    f"{count} {method} requests not received in {timeout} s; "
                    f"got {len(matching())}"
                )
            return [dict(r) for r in matching()]

    # ------------------------------------------------------------ the user's side
    def send_command(
        self,
        text: str,
        *,
        chat_id: int = 42,
        user_id: int | None = None,
        username: str | None = "alice",
        chat_type: str | None = None,
        reply_to: int | None = None,
        bot: str | None = None,
    ) -> int:
        """Queue a user's message (``/ps``, ``/status etl``) for ``getUpdates``, with
        a ``bot_command`` entity when it starts with ``/``; returns its update id.

        ``user_id`` defaults to ``chat_id`` (a private chat); ``chat_type`` to
        ``private`` for a positive chat id, ``supergroup`` otherwise. ``reply_to``:
        the message id it answers. ``bot``: the token of the bot it is for (``None``:
        whichever bot polls).
        """
        user = user_id if user_id is not None else chat_id
        sender: JSONBody = {"id": user, "is_bot": False, "first_name": "User"}
        if username:
            sender["username"] = username
        with self._lock:
            self._message_ids += 1
            message: JSONBody = {
                "message_id": self._message_ids,
                "date": int(time.time()),
                "chat": _chat(chat_id, chat_type),
                "from": sender,
                "text": text,
            }
            if text.startswith("/"):
                command = text.split(maxsplit=1)[0]
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": len(command)}
                ]
            if reply_to is not None and reply_to in self._sent:
                message["reply_to_message"] = dict(self._sent[reply_to])
            return self._queue_update({"message": message}, bot)

    def press_button(
        self,
        data: str,
        *,
        message_id: int | None = None,
        chat_id: int | None = None,
        user_id: int = 42,
        username: str | None = "alice",
        bot: str | None = None,
    ) -> int:
        """Queue a press of an inline button whose ``callback_data`` is ``data``, on
        the message ``message_id`` (default: the last one the bot sent); returns its
        update id. The callback query's id is ``"cq<n>"``."""
        sender: JSONBody = {"id": user_id, "is_bot": False, "first_name": "User"}
        if username:
            sender["username"] = username
        with self._lock:
            if message_id is None:
                if not self._sent:
                    raise LookupError(
                        "the bot has sent no message to press a button on"
                    )
                message_id = max(self._sent)
            message = dict(self._sent[message_id])
            if chat_id is not None:
                message["chat"] = _chat(chat_id, None)
            self._callback_ids += 1
            query: JSONBody = {
                "id": f"cq{self._callback_ids}",
                "from": sender,
                "chat_instance": f"ci{message['chat']['id']}",
                "data": data,
                "message": message,
            }
            return self._queue_update({"callback_query": query}, bot)

    def message(self, message_id: int) -> JSONBody:
        """A message the bot sent, as it reads now (after its edits): ``text``,
        ``reply_markup`` (parsed, if any), ``chat``, ``message_id``."""
        with self._lock:
            return dict(self._sent[message_id])

    @property
    def sent_ids(self) -> list[int]:
        """The ids of the messages the bot sent, oldest first."""
        with self._lock:
            return sorted(self._sent)

    @property
    def edits(self) -> list[dict[str, Any]]:
        """Every ``editMessageText`` accepted: its form fields."""
        with self._lock:
            return [dict(e) for e in self._edits]

    @property
    def waiting_polls(self) -> int:
        """``getUpdates`` long polls waiting for an update now."""
        with self._lock:
            return self._waiting

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed by a poll's ``offset``."""
        with self._lock:
            return len(self._updates)

    def wait_for_edit(
        self, predicate: Any = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Wait for an ``editMessageText`` (whose fields satisfy ``predicate``, if
        given); return its fields.

        Raises:
            TimeoutError: listing the edits seen.
        """

        def found() -> dict[str, Any] | None:
            for edit in self._edits:
                if predicate is None or predicate(edit):
                    return edit
            return None

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout):
                texts = [str(e.get("text", ""))[:60] for e in self._edits]
                raise TimeoutError(f"no matching edit in {timeout} s: {texts}")
            edit = found()
            assert edit is not None
            return dict(edit)

    def wait_for_edits(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` edits were accepted; return them all."""
        found = wait_for_items(
            self._changed,
            self._edits,
            count,
            timeout,
            what="edits",
            describe=lambda e: str(e.get("text", ""))[:40],
        )
        return [dict(e) for e in found]

    def go_down(self, status: int = 502) -> None:
        """Answer every request with ``status`` (a Bot API outage) until
        :meth:`come_back`; long polls under way end with it too."""
        with self._changed:
            self._down = status
            self._changed.notify_all()

    def come_back(self) -> None:
        """End :meth:`go_down`."""
        with self._changed:
            self._down = None
            self._changed.notify_all()

    def _queue_update(self, update: JSONBody, bot: str | None) -> int:
        # called with the lock held; "bot<token>" as in the request path, or None
        self._update_ids += 1
        self._updates.append(
            {
                "update_id": self._update_ids,
                **update,
                _FOR: f"bot{bot}" if bot else None,
            }
        )
        self._changed.notify_all()
        return self._update_ids

    def _get_updates(self, token: str, fields: dict[str, Any]) -> tuple[int, JSONBody]:
        """A long poll (called without the lock); the status and body."""
        offset = _int(fields.get("offset"), 0)
        limit = max(1, min(100, _int(fields.get("limit"), 100)))
        timeout = max(0.0, float(_int(fields.get("timeout"), 0)))
        deadline = time.monotonic() + timeout
        with self._changed:
            self._polls += 1
            number = self._polls
            self._pollers[token] = number  # a newer poll ends an older one (409)
            if offset:
                self._updates = [
                    u
                    for u in self._updates
                    if u["update_id"] >= offset or u[_FOR] not in (None, token)
                ]
            self._changed.notify_all()
            while True:
                if self._pollers.get(token) != number:
                    return 409, _error(409, _DESCRIPTIONS[409])
                if self._down is not None:
                    return self._down, _error(
                        self._down, _DESCRIPTIONS.get(self._down, "Error")
                    )
                ready = [
                    {k: v for k, v in u.items() if k != _FOR}
                    for u in self._updates
                    if u["update_id"] >= offset and u[_FOR] in (None, token)
                ]
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0 or self._stopping.is_set():
                    if self._pollers.get(token) == number:
                        del self._pollers[token]
                    return 200, {"ok": True, "result": ready[:limit]}
                self._waiting += 1
                try:
                    self._changed.wait(remaining)
                finally:
                    self._waiting -= 1

    # ------------------------------------------------------------ internals
    def _spawn(self, httpd: _Server, request: socket.socket, address: Any) -> None:
        with self._lock:
            self._connections += 1
            number = self._connections
            self._sockets[request] = number

        def run() -> None:
            try:
                httpd.process_request_thread(request, address)
            finally:
                with self._lock:
                    self._sockets.pop(request, None)
                    self._conn_threads.discard(threading.current_thread())

        thread = threading.Thread(
            target=run, name=f"fake-telegram-conn-{number}", daemon=True
        )
        with self._lock:
            self._conn_threads.add(thread)
        thread.start()

    def _next_reply(self, method: str) -> TelegramReply | None:
        for reply in self._script:
            if reply.method is None or reply.method == method:
                self._script.remove(reply)
                return reply
        return None

    def _handle(self, handler: _Handler) -> None:
        path = urlsplit(handler.path).path
        method = path.rstrip("/").rsplit("/", 1)[-1]
        fields = _read_fields(handler)
        token = path.rstrip("/").rsplit("/", 2)[-2] if path.count("/") >= 2 else ""
        with self._lock:
            down = self._down
            scripted = self._next_reply(method) if down is None else None
        if down is not None:
            scripted = TelegramReply.error(down)
        elif scripted is None and method == "getUpdates":
            status, polled = self._get_updates(token, fields)
            scripted = TelegramReply(status, polled, method=method)
        with self._lock:
            reply = scripted or TelegramReply(200, method=method)
            status = reply.status
            if reply.status == 200 and reply.body is None:
                success = self._success(method, fields)
                if success.get("ok") is False:  # e.g. no such message to edit
                    status = int(success["error_code"])
                body: JSONBody | bytes = success
            else:
                body = reply.body if reply.body is not None else {"ok": True}
            record = {
                "method": method,
                "fields": fields,
                "status": status,
                "connection": self._sockets.get(handler.request, 0),
            }
            self._requests.append(record)
            self._changed.notify_all()
        if reply.delay and self._stopping.wait(reply.delay):
            handler.close_connection = True
            return
        if reply.hold:
            reply._released.wait(self.hold_timeout)
            if self._stopping.is_set():
                handler.close_connection = True
                return
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        content_type = "text/html" if isinstance(body, bytes) else "application/json"
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:  # the client gave up (e.g. its read timeout)
            handler.close_connection = True

    def _success(self, method: str, fields: dict[str, Any]) -> JSONBody:
        # called with the lock held
        if method == "getMe":
            return {
                "ok": True,
                "result": {
                    "id": 1234567,
                    "is_bot": True,
                    "first_name": "Fake",
                    "username": "fake_bot",
                },
            }
        if method == "editMessageText":
            return self._edit(fields)
        if method != "sendMessage":
            return {"ok": True, "result": True}
        self._message_ids += 1
        message = {"chat_id": None, "text": "", "parse_mode": None, **fields}
        self._messages.append(message)
        raw_chat = str(message["chat_id"])
        chat_id = int(raw_chat) if raw_chat.lstrip("-").isdigit() else -1001
        result: JSONBody = {
            "message_id": self._message_ids,
            "date": int(time.time()),
            "chat": _chat(chat_id, None),
            "text": str(message["text"]),
        }
        self._sent[self._message_ids] = {
            **result,
            "reply_markup": _markup(fields.get("reply_markup")),
        }
        return {"ok": True, "result": result}

    def _edit(self, fields: dict[str, Any]) -> JSONBody:
        # called with the lock held
        message_id = _int(fields.get("message_id"), 0)
        known = self._sent.get(message_id)
        if known is None:
            return _error(400, "Bad Request: message to edit not found")
        self._edits.append(dict(fields))
        known["text"] = str(fields.get("text", ""))
        known["reply_markup"] = _markup(fields.get("reply_markup"))
        result = {k: v for k, v in known.items() if k != "reply_markup"}
        return {"ok": True, "result": result}


def _chat(chat_id: int, chat_type: str | None) -> JSONBody:
    chat: JSONBody = {
        "id": chat_id,
        "type": chat_type or ("private" if chat_id > 0 else "supergroup"),
    }
    if chat["type"] != "private":
        chat["title"] = "Fake group"
    return chat


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _markup(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _read_fields(handler: _Handler) -> dict[str, Any]:
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    content_type = handler.headers.get("Content-Type", "")
    if "json" in content_type:
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return {str(k): v for k, v in data.items()} if isinstance(data, dict) else {}
    query = urlsplit(handler.path).query
    pairs = parse_qsl(query) + parse_qsl(raw.decode("utf-8", "replace"))
    return dict(pairs)
