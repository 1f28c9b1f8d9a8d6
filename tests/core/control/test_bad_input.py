"""Bad input: each gets an error reply (or a clean close) and the server lives on."""

from __future__ import annotations

import contextlib
import json
import random
import socket
from typing import Any

import pytest

from pyorchestrate.core.control.protocol import MAX_LINE_BYTES
from tests.agents import agent

from .conftest import RawConn, Serve, Served, request_line


@pytest.fixture
def served(serve: Serve) -> Served:
    served = serve(agents=[(agent("forever", "thread"), "w")])
    served.wait_state("w", "READY")
    return served


def _error(conn: RawConn, data: bytes) -> dict[str, Any]:
    conn.send(data)
    message = conn.read_json()
    assert message["event_name"] == "STATUS"
    payload: dict[str, Any] = message["payload"]
    assert payload["status"] == "error", payload
    assert payload["protocol_version"] == "1.0"
    return payload


def _still_serving(served: Served, conn: RawConn | None = None) -> None:
    """The given connection (if any) and a fresh one both get a correct ps."""
    for c in (conn, served.raw()):
        if c is None:
            continue
        payload = c.reply("ps")
        assert payload["status"] == "success", payload
        assert [a["agent_name"] for a in payload["data"]["agents"]] == ["w"]
    assert served.state("w") == "READY"


@pytest.mark.parametrize(
    "line",
    [
        b"{",
        b'{"command": "ps"',
        b"{'command': 'ps'}",
        b'{"command": "ps",}',
        b"command=ps",
        b"ps",
        b"NaNa",
        b"[" * 200_000,  # nests too deep for the parser
    ],
)
def test_malformed_json_gets_400_and_the_connection_stays_usable(
    served: Served, line: bytes
) -> None:
    conn = served.raw()
    payload = _error(conn, line + b"\n")
    assert payload["code"] == 400
    assert payload["error_type"] == "ProtocolError"
    assert payload["request_id"] is None
    _still_serving(served, conn)


@pytest.mark.parametrize("value", [[], [{"command": "ps"}], "ps", 42, None, True])
def test_json_that_is_not_an_object_gets_400(served: Served, value: object) -> None:
    conn = served.raw()
    assert _error(conn, json.dumps(value).encode() + b"\n")["code"] == 400
    _still_serving(served, conn)


def test_binary_garbage_gets_400(served: Served) -> None:
    rng = random.Random(1234)
    conn = served.raw()
    for size in (1, 3, 100, 5000, 60_000):
        garbage = bytes(
            rng.choice([b for b in range(256) if b != 10]) for _ in range(size)
        )
        if not garbage.strip():
            continue
        payload = _error(conn, garbage + b"\n")
        assert payload["code"] == 400
    payload = _error(conn, b"\xff\xfe\xfd\x00\x80\n")
    assert "UTF-8" in payload["error"]
    _still_serving(served, conn)


def test_a_line_at_the_cap_is_served(served: Served) -> None:
    line, rid = request_line("ps")
    padded = line.rstrip(b"\n").ljust(MAX_LINE_BYTES, b" ") + b"\n"
    assert len(padded) == MAX_LINE_BYTES + 1  # the line itself is exactly 1 MiB
    conn = served.raw()
    conn.send(padded)
    payload = conn.read_json()["payload"]
    assert payload["status"] == "success"
    assert payload["request_id"] == rid


@pytest.mark.parametrize("valid_json", [False, True])
def test_a_line_past_the_cap_gets_an_error_then_a_close(
    served: Served, valid_json: bool
) -> None:
    if valid_json:
        line = json.dumps({"command": "ps", "pad": "x" * MAX_LINE_BYTES}).encode()
    else:
        line = b"a" * (MAX_LINE_BYTES + 1)
    assert len(line) > MAX_LINE_BYTES
    conn = served.raw()
    # The server may close before it has read everything we sent.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        conn.send(line + b"\n")
    payload = conn.read_json()["payload"]
    assert payload["status"] == "error"
    assert payload["code"] == 400
    assert str(MAX_LINE_BYTES) in payload["error"]
    assert conn.at_eof()
    _still_serving(served)


def test_half_a_line_then_a_disconnect_is_never_executed(served: Served) -> None:
    line, _ = request_line("stop", "w")
    for cut in (1, len(line) // 2, len(line) - 1):  # everything but the newline
        conn = served.raw()
        conn.send(line[:cut])
        conn.close()
    _still_serving(served)  # w was not stopped by any of the fragments


def test_half_a_line_then_half_close_gets_a_clean_close(served: Served) -> None:
    conn = served.raw()
    line, _ = request_line("stop", "w")
    conn.send(line[:-5])
    conn.sock.shutdown(socket.SHUT_WR)
    assert conn.at_eof()
    _still_serving(served)


def test_a_request_then_half_close_still_gets_its_reply(served: Served) -> None:
    conn = served.raw()
    rid = conn.request("status", "w")
    conn.sock.shutdown(socket.SHUT_WR)
    payload = conn.read_json()["payload"]
    assert payload["request_id"] == rid
    assert payload["status"] == "success"
    assert conn.at_eof()


def test_crlf_line_endings_are_accepted(served: Served) -> None:
    conn = served.raw()
    line, rid = request_line("ps")
    conn.send(line.rstrip(b"\n") + b"\r\n")
    payload = conn.read_json()["payload"]
    assert (payload["status"], payload["request_id"]) == ("success", rid)


@pytest.mark.parametrize(
    "command", ["frobnicate", "PS now", "p s", "ps☃", "history_stats"]
)
def test_an_unknown_command_gets_400(served: Served, command: str) -> None:
    conn = served.raw()
    payload = conn.reply(command)
    assert payload["code"] == 400
    assert payload["error_type"] == "UnknownCommand"
    assert "Unknown command" in payload["error"]
    _still_serving(served, conn)


@pytest.mark.parametrize(
    "message",
    [
        {"args": []},
        {"command": None},
        {"command": ""},
        {"command": 7},
        {"command": ["ps"]},
        {"event_name": "STATUS", "payload": {"command": "ps"}},
        {"event_name": "COMMAND", "payload": ["ps"]},
        {"command": "ps", "args": "w"},
        {"command": "ps", "args": {"0": "w"}},
    ],
)
def test_a_request_of_the_wrong_shape_gets_400(
    served: Served, message: dict[str, Any]
) -> None:
    conn = served.raw()
    assert _error(conn, json.dumps(message).encode() + b"\n")["code"] == 400
    _still_serving(served, conn)


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("status", [5]),
        ("status", [None]),
        ("status", [["w"]]),
        ("status", [{"name": "w"}]),
        ("status", [""]),
        ("start", [True]),
        ("stop", [1.5]),
        ("restart", [{"w": 1}]),
        ("stop", ["w", "w"]),  # too many
        ("start", []),  # too few
        ("ps", ["w"]),
        ("history", [{"last": "x"}]),
        ("history", [{"last": True}]),
        ("history", [{"last": 2.5}]),
        ("history", [{"agent": ["w"]}]),
        ("history", [{"after_seq": None, "bogus": 1}]),
        ("history", [5]),
        ("history-stats", [{"agent": 5}]),
    ],
)
def test_wrong_argument_types_get_400(
    served: Served, command: str, args: list[Any]
) -> None:
    conn = served.raw()
    payload = conn.reply(command, *args)
    assert payload["status"] == "error", payload
    assert payload["code"] == 400, payload
    _still_serving(served, conn)


def test_a_forbidden_command_gets_403_and_nothing_happens(serve: Serve) -> None:
    served = serve(
        agents=[(agent("forever", "thread"), "w")], allowed_commands="monitoring"
    )
    served.wait_state("w", "READY")
    conn = served.raw()
    for command, args in [("stop", ["w"]), ("shutdown", []), ("dependencies", [])]:
        payload = conn.reply(command, *args)
        assert payload["code"] == 403, payload
        assert "Allowed commands" in payload["error"]
    _still_serving(served, conn)
    assert not served.orchestrator.is_shutting_down


def test_all_bad_inputs_in_a_row_on_one_connection(served: Served) -> None:
    conn = served.raw()
    bad = [
        b"{oops\n",
        b"\x00\x01\x02\xff\n",
        b'{"command": "nope"}\n',
        b'{"command": "status", "args": [5]}\n',
        b'{"command": "history", "args": [{"last": "x"}]}\n',
        b'{"command": "status", "args": ["ghost"]}\n',
        b'{"command": "start", "args": ["w"]}\n',
    ]
    conn.send(b"".join(bad))
    codes = sorted(conn.read_json()["payload"]["code"] for _ in bad)
    assert codes == [400, 400, 400, 400, 400, 404, 409]
    _still_serving(served, conn)
