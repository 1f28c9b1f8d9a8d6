"""Finding the orchestrator to talk to in the private socket directory.

The sockets here are real listening Unix sockets (a connection is accepted by the
kernel's backlog; nobody needs to answer) and stale ones (bound, then closed).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyorchestrate.core.control.client import (
    ControlClient,
    SeveralOrchestrators,
    live_sockets,
    resolve_socket_path,
)
from pyorchestrate.core.control.paths import default_socket_path, private_sockets


@pytest.fixture
def private_dir(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    monkeypatch.delenv("PYORCHESTRATE_SOCKET", raising=False)
    private = short_tmp / "pyorchestrate"
    private.mkdir(mode=0o700)
    return private


def _make(private_dir: Path, name: str, *, live: bool) -> socket.socket:
    path = private_dir / f"{name}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    if live:
        sock.listen(8)
    return sock


@pytest.fixture
def sockets(private_dir: Path) -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    yield made
    for sock in made:
        sock.close()
    for path in private_dir.glob("*.sock"):
        path.unlink()


def test_several_live_sockets_are_ambiguous_and_listed(
    private_dir: Path, sockets: list[socket.socket]
) -> None:
    for name in ("alpha", "Orchestrator"):
        sockets.append(_make(private_dir, name, live=True))
    sockets.append(_make(private_dir, "gone", live=False))
    assert [Path(p).stem for p in live_sockets()] == ["Orchestrator", "alpha"]
    assert len(private_sockets()) == 3
    with pytest.raises(SeveralOrchestrators) as caught:
        resolve_socket_path()
    assert caught.value.data["sockets"] == live_sockets()
    assert "--name alpha" in caught.value.message
    assert "--name Orchestrator" in caught.value.message
    assert "gone" not in caught.value.message
    with pytest.raises(SeveralOrchestrators):
        ControlClient()
    # A choice settles it.
    assert resolve_socket_path(name="alpha") == str(private_dir / "alpha.sock")
    assert ControlClient(name="alpha").socket_path == str(private_dir / "alpha.sock")


def test_the_only_live_socket_wins_over_stale_ones_and_the_default(
    private_dir: Path, sockets: list[socket.socket]
) -> None:
    sockets.append(_make(private_dir, "Orchestrator", live=False))
    sockets.append(_make(private_dir, "zeta", live=True))
    assert resolve_socket_path() == str(private_dir / "zeta.sock")


def test_with_nothing_live_the_default_is_tried(
    private_dir: Path, sockets: list[socket.socket]
) -> None:
    sockets.append(_make(private_dir, "Orchestrator", live=False))
    sockets.append(_make(private_dir, "other", live=False))
    assert resolve_socket_path() == default_socket_path()


def test_a_name_is_made_safe_like_the_server_does(private_dir: Path) -> None:
    assert resolve_socket_path(name="my app/1") == str(private_dir / "my_app_1.sock")
