"""The dashboard inside an orchestrator's own process: ``orchestrator.serve_web()``.

:class:`EmbeddedWeb` serves the same application as ``pyorchestrate web`` on a thread
named ``pyorchestrate-web``, and talks to the orchestrator **through its command
socket**, like the CLI and the stand-alone dashboard:

* one code path: the link, the live event hub (``subscribe`` streams, which
  :meth:`Orchestrator.run_command` cannot), the error pages and the audit trail are
  those of the stand-alone dashboard, tested once;
* the same permissions: the orchestrator's ``allowed_commands`` applies to the page
  exactly as to the CLI, and actions are recorded with source ``web``;
* the cost is a Unix-socket round trip per command (about 0.1 ms), far below a
  page's own.

So the command interface must be on (it is by default). The orchestrator stops and
joins the server at its shutdown (before its command socket closes), so no thread is
left behind.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..core.errors import ConfigError
from ._server import WebServer

if TYPE_CHECKING:
    from ..core.orchestrator.orchestrator import Orchestrator
    from ._panels import AlertsPanel

__all__ = ["EmbeddedWeb", "serve_web"]

logger = logging.getLogger(__name__)


class EmbeddedWeb:
    """A dashboard served for ``orchestrator`` in its process.

    Args:
        orchestrator: the orchestrator to show (through its command socket).
        alerts: an Alerts panel of the caller's (e.g. a
            ``notifiers.web_panel.NotifierPanel`` over the dispatcher of this
            process); default: one for ``notify_state``/``notify_config``, if set.
        settings: :class:`~pyorchestrate.web.WebConfig` fields (``host``,
            ``port``, ``token``, ``permissions``, ...); ``socket_path`` is the
            orchestrator's.

    Raises:
        ConfigError: a bad setting, or the orchestrator's command interface is off.
    """

    def __init__(
        self,
        orchestrator: Orchestrator,
        *,
        alerts: AlertsPanel | None = None,
        **settings: Any,
    ) -> None:
        if not orchestrator.config.enable_command_interface:
            raise ConfigError(
                "invalid WebConfig",
                [
                    (
                        "enable_command_interface",
                        "the embedded dashboard talks to the orchestrator through "
                        "its command socket: leave the command interface on",
                    )
                ],
            )
        if "socket_path" in settings or "name" in settings:
            raise ConfigError(
                "invalid WebConfig",
                [("socket_path", "the embedded dashboard shows its own orchestrator")],
            )
        self.orchestrator = orchestrator
        self.server = WebServer(
            socket_path=orchestrator.command_socket_path, alerts=alerts, **settings
        )

    @property
    def url(self) -> str:
        """``http://host:port`` (the port chosen when 0 was asked)."""
        return self.server.url

    def start(self) -> EmbeddedWeb:
        """Serve on the ``pyorchestrate-web`` thread; return once it accepts.

        Raises:
            OSError: the address cannot be bound.
        """
        self.server.start()
        logger.info(
            "dashboard of %r serving on %s", self.orchestrator.name, self.server.url
        )
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop serving and join the thread (idempotent)."""
        self.server.stop(timeout)


def serve_web(
    orchestrator: Orchestrator,
    *,
    alerts: AlertsPanel | None = None,
    **settings: Any,
) -> EmbeddedWeb:
    """Start an :class:`EmbeddedWeb` for ``orchestrator`` (what
    ``Orchestrator.serve_web`` calls)."""
    return EmbeddedWeb(orchestrator, alerts=alerts, **settings).start()
