"""``WebServer``: the dashboard served by uvicorn, in the foreground or on a thread.

``run()`` serves in the foreground until SIGINT/SIGTERM (the CLI). ``start()`` serves
on a thread named ``pyorchestrate-web`` that ``stop()`` ends and joins (tests and
embedding): live pages are ended first, so nothing holds the shutdown.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import uvicorn

from ._app import Dashboard, build_app
from ._config import WebConfig
from ._panels import AlertsPanel

__all__ = ["WebServer"]

logger = logging.getLogger(__name__)

_GRACE = 2
"""Seconds uvicorn waits for open responses at shutdown."""
_FORCED = 5.0
"""Seconds a forced exit is given before ``stop()`` gives up."""


class WebServer:
    """The dashboard on ``config.host:config.port`` (port 0: a free one);
    ``alerts``: the Alerts page's provider (see :func:`build_app`).

    Raises:
        ConfigError: a bad setting.
        SeveralOrchestrators: no socket or name given and several run.
    """

    def __init__(
        self,
        config: WebConfig | None = None,
        *,
        alerts: AlertsPanel | None = None,
        **settings: Any,
    ) -> None:
        self.app = build_app(config, alerts=alerts, **settings)
        self.dashboard: Dashboard = self.app.state.dashboard
        self.config = self.dashboard.config
        self._sock: socket.socket | None = None
        self._url: str | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` once bound (still known after :meth:`stop`)."""
        if self._url is None:
            raise RuntimeError("the server is not bound yet")
        return self._url

    def bind(self) -> socket.socket:
        """Bind the listening socket now (``run``/``start`` do it if not done), so
        :attr:`url` is known before serving.

        Raises:
            OSError: the address cannot be bound (in use, not ours).
        """
        if self._sock is not None:
            return self._sock
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets
        # whose proto says TCP, and without it each response waits ~40 ms for the
        # client's delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.config.host.strip("[]"), self.config.port))
        except OSError:
            sock.close()
            raise
        sock.listen(2048)  # connections wait in the queue until uvicorn serves
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self._url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        return sock

    def _uvicorn(self) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=_GRACE,
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        return self._server

    def run(self) -> None:
        """Serve in the foreground until SIGINT or SIGTERM.

        Raises:
            OSError: the address cannot be bound (in use, not ours).
        """
        sock = self.bind()
        try:
            self._uvicorn().run(sockets=[sock])
        finally:
            sock.close()

    def start(self, timeout: float = 10.0) -> WebServer:
        """Serve on a thread; return once it accepts connections.

        Raises:
            OSError: the address cannot be bound.
            RuntimeError: the server did not start within ``timeout`` seconds.
        """
        if self._thread is not None:
            raise RuntimeError("the server was started already")
        sock = self.bind()
        server = self._uvicorn()
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="pyorchestrate-web"
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the dashboard did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """End live pages, stop serving and join the thread (and the link's
        threads). Idempotent.

        The graceful stop may wait for a command in flight to the orchestrator:
        at most connecting plus one reply, two ``timeout`` of the config, plus
        uvicorn's grace for open responses; ``timeout`` (default: that, plus 5 s)
        bounds it, then uvicorn is told to force its exit.

        Raises:
            RuntimeError: the server thread did not end after the forced exit.
        """
        if timeout is None:
            timeout = 2 * self.config.timeout + _GRACE + 5
        if self._server is not None:
            self.dashboard.end_pages()
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                logger.warning("the dashboard did not stop in time: forcing its exit")
                self._server.force_exit = True
                self._thread.join(_FORCED)
            if self._thread.is_alive():
                raise RuntimeError(f"the dashboard did not stop within {timeout:g} s")
            self._thread = None
        self.dashboard.link.close()  # done by the app's shutdown, unless forced
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
