"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import email
import socket
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote, urlencode

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from ._waiting import wait_for_items

__all__ = ["AuthFailure", "LocalSMTPServer", "ReceivedEmail"]


@dataclass(frozen=True)
class ReceivedEmail:
    """One message as the server received it."""

    subject: str
    from_: str
    to: list[str]
    text: str
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage = field(repr=False)


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    return content if isinstance(content, str) else ""


class _Handler:
    def __init__(self, server: LocalSMTPServer) -> None:
        self._server = server

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._server.username is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.content
        data = raw if isinstance(raw, bytes) else (raw or "").encode()
        parsed = email.message_from_bytes(data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self._server._store(
            ReceivedEmail(
                subject=str(parsed.get("Subject", "")),
                from_=str(parsed.get("From", "")),
                to=[a.strip() for a in str(parsed.get("To", "")).split(",") if a],
                text=_text_of(parsed).replace("\r\n", "\n").rstrip("\n"),
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                message=parsed,
            )
        )
        return "250 OK"


_TEMPORARY = "454 4.7.0 Temporary authentication failure"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


AuthFailure = Literal["reply", "silent", "temporary"]


class LocalSMTPServer:
    """aiosmtpd on ``127.0.0.1`` and a free port; stores messages thread-safely.

    With ``username`` and ``password`` it offers AUTH without TLS and refuses mail
    from a client that did not log in. A wrong password gets, by ``auth_failure``:

    * ``"reply"`` (default): ``535 5.7.8 Authentication credentials invalid`` at once;
    * ``"silent"``: no reply at all, so the client waits until its socket timeout,
      as with a server that delays a failed login beyond it (a tarpit) or never
      answers one. This is aiosmtpd's own ``AuthResult(success=False)``, whose
      ``handled=True`` default sends nothing;
    * ``"temporary"``: ``454 4.7.0 Temporary authentication failure`` (RFC 4954: the
      server could not check the credentials now, e.g. its backend is down).

    Use as a context manager, or ``start()``/``stop()``.
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        auth_failure: AuthFailure = "reply",
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        if auth_failure not in ("reply", "silent", "temporary"):
            raise ValueError("auth_failure must be 'reply', 'silent' or 'temporary'")
        self.username = username
        self.password = password
        self.auth_failure: AuthFailure = auth_failure
        self.host = "127.0.0.1"
        self.port = 0
        self.messages: list[ReceivedEmail] = []
        self.auth_failures = 0
        self._cond = threading.Condition()
        self._controller: Controller | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> LocalSMTPServer:
        """Listen on a free port; return ``self``."""
        if self._controller is not None:
            raise RuntimeError("the SMTP server is already running")
        kwargs: dict[str, Any] = {}
        if self.username is not None:
            kwargs = {"authenticator": self._authenticate, "auth_require_tls": False}
        last: OSError | None = None
        for _ in range(5):  # another process may grab the probed port first
            port = _free_port()
            controller = Controller(
                _Handler(self), hostname=self.host, port=port, **kwargs
            )
            try:
                controller.start()
            except OSError as exc:
                last = exc
                continue
            thread = getattr(controller, "_thread", None)
            if isinstance(thread, threading.Thread):
                thread.name = "notifiers-smtp-server"
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not start the SMTP server: {last}")

    def stop(self) -> None:
        """Stop the server and join its thread (idempotent)."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> LocalSMTPServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ use
    def url(
        self,
        *,
        to: str = "ops@example.com",
        from_: str = "alerts@example.com",
        username: str | None = None,
        password: str | None = None,
    ) -> str:
        """A ``mailto://`` URL (plain SMTP) for this server.

        The server's own credentials are used unless others are given.
        """
        user = username if username is not None else self.username
        secret = password if password is not None else self.password
        auth = ""
        if user is not None:
            auth = quote(user, safe="")
            if secret is not None:
                auth += ":" + quote(secret, safe="")
            auth += "@"
        query = urlencode({"from": from_, "to": to})
        return f"mailto://{auth}{self.host}:{self.port}?{query}"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedEmail]:
        """Wait until ``count`` messages arrived; return them all.

        Raises:
            TimeoutError: listing the subjects seen, if they did not arrive in time.
        """
        return wait_for_items(
            self._cond,
            self.messages,
            count,
            timeout,
            what="e-mails",
            describe=lambda m: m.subject,
        )

    # ------------------------------------------------------------ internals
    def _store(self, received: ReceivedEmail) -> None:
        with self._cond:
            self.messages.append(received)
            self._cond.notify_all()

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.username is not None
            and self.password is not None
            and auth_data.login == self.username.encode()
            and auth_data.password == self.password.encode()
        )
        if not ok:
            with self._cond:
                self.auth_failures += 1
            if self.auth_failure == "temporary":
                return AuthResult(success=False, handled=False, message=_TEMPORARY)
            # handled=False: aiosmtpd replies 535; handled=True: it replies nothing.
            return AuthResult(success=False, handled=self.auth_failure == "silent")
        return AuthResult(success=True, auth_data=auth_data)
