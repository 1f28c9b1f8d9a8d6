"""WebServer: where it listens, and how."""

from __future__ import annotations

import socket
from pathlib import Path

from pyorchestrate.web import WebServer


def test_it_listens_on_loopback_with_nagle_off(short_tmp: Path) -> None:
    server = WebServer(socket_path=str(short_tmp / "o.sock"), port=0)
    try:
        sock = server.bind()
        assert sock.getsockname()[0] == "127.0.0.1"
        # asyncio sets TCP_NODELAY on accepted sockets only when the listener's
        # proto says TCP; with proto 0 every response waited ~40 ms for the
        # client's delayed ACK.
        assert sock.proto == socket.IPPROTO_TCP
        assert server.url.startswith("http://127.0.0.1:")
    finally:
        server.stop()
