"""The wire protocol: request/reply envelopes, parsing, request_id and version."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from pyorchestrate.core.control.protocol import (
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    Request,
    build_request,
    encode,
    error_reply,
    event_line,
    parse_reply,
    parse_request,
    success_reply,
)
from pyorchestrate.core.errors import (
    AgentNotFound,
    CommandForbidden,
    ProtocolError,
    UnknownCommand,
)
from tests.agents import agent

from .conftest import Serve, request_line


def _line(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _iso(text: str) -> dt.datetime:
    stamp = dt.datetime.fromisoformat(text)
    assert stamp.tzinfo is not None, f"timestamp without an offset: {text}"
    return stamp


# ---------------------------------------------------------------- constants


def test_protocol_version_and_line_cap() -> None:
    assert PROTOCOL_VERSION == "1.0"
    assert MAX_LINE_BYTES == 1024 * 1024


# ---------------------------------------------------------------- requests


def test_build_request_has_the_envelope_fields() -> None:
    message = build_request("status", ["worker"], sender="cli", meta={"k": 1})
    assert set(message) == {"sender", "event_name", "payload", "timestamp"}
    assert message["sender"] == "cli"
    assert message["event_name"] == "COMMAND"
    _iso(message["timestamp"])
    payload = message["payload"]
    assert set(payload) >= {"command", "args", "request_id", "timestamp", "meta"}
    assert payload["command"] == "status"
    assert payload["args"] == ["worker"]
    assert payload["meta"] == {"k": 1}
    assert isinstance(payload["request_id"], str) and len(payload["request_id"]) >= 16
    _iso(payload["timestamp"])


def test_build_request_ids_are_fresh_unless_given() -> None:
    ids = {build_request("ps")["payload"]["request_id"] for _ in range(200)}
    assert len(ids) == 200
    assert build_request("ps", request_id="mine")["payload"]["request_id"] == "mine"


def test_parse_request_reads_an_envelope() -> None:
    message = build_request("status", ["w"], sender="cli", request_id="r-1")
    request = parse_request(encode(message).rstrip(b"\n"))
    assert request == Request(
        command="status", args=["w"], request_id="r-1", sender="cli", meta={}
    )


def test_parse_request_accepts_a_bare_payload() -> None:
    request = parse_request(b'{"command": "ps"}')
    assert request.command == "ps"
    assert request.args == []
    assert request.request_id is None


def test_parse_request_normalises_command_args_and_request_id() -> None:
    request = parse_request(_line({"command": "  PS ", "args": None, "request_id": 7}))
    assert request.command == "ps"
    assert request.args == []
    assert request.request_id == "7"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (b"\xff\xfe{}", "UTF-8"),
        (b"{not json", "JSON"),
        (b"[1, 2, 3]", "object"),
        (b'"ps"', "object"),
        (_line({"payload": "ps"}), "payload"),
        (_line({"event_name": "STATUS", "payload": {"command": "ps"}}), "COMMAND"),
        (_line({"payload": {"args": []}}), "no command"),
        (_line({"command": ""}), "no command"),
        (_line({"command": 5}), "string"),
        (_line({"command": "ps", "args": "x"}), "array"),
        (_line({"command": "ps", "args": {"a": 1}}), "array"),
        (_line({"command": "ps", "meta": 3}), "meta"),
        (_line({"command": "ps", "request_id": {"x": 1}}), "request_id"),
        (b"[" * 100_000, "JSON"),
    ],
)
def test_parse_request_rejects_malformed_lines(line: bytes, fragment: str) -> None:
    with pytest.raises(ProtocolError, match=fragment) as caught:
        parse_request(line)
    assert caught.value.code == 400


def test_parse_request_errors_keep_a_known_request_id() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_request(_line({"command": "ps", "args": "x", "request_id": "abc"}))
    assert caught.value.data.get("request_id") == "abc"


# ---------------------------------------------------------------- replies


def test_success_reply_fields() -> None:
    reply = success_reply("r-9", {"answer": 42}, sender="orch")
    assert reply["sender"] == "orch"
    assert reply["event_name"] == "STATUS"
    _iso(reply["timestamp"])
    payload = reply["payload"]
    assert payload["status"] == "success"
    assert payload["code"] == 0
    assert payload["data"] == {"answer": 42}
    assert payload["error"] is None
    assert payload["request_id"] == "r-9"
    assert payload["protocol_version"] == "1.0"
    _iso(payload["timestamp"])


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ProtocolError("bad"), 400),
        (UnknownCommand("bad"), 400),
        (CommandForbidden("no", data={"allowed_commands": ["ps"]}), 403),
        (AgentNotFound("who"), 404),
    ],
)
def test_error_reply_fields(error: Any, code: int) -> None:
    payload = error_reply("r-1", error, sender="orch")["payload"]
    assert payload["status"] == "error"
    assert payload["code"] == code
    assert payload["error"] == error.message
    assert payload["error_type"] == type(error).__name__
    assert payload["data"] == error.data
    assert payload["request_id"] == "r-1"
    assert payload["protocol_version"] == "1.0"


def test_encode_is_one_line_even_with_newlines_in_data() -> None:
    line = encode(success_reply("r", {"text": "a\nb\r\nc", "n": 1}, sender="o"))
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert parse_reply(line.rstrip(b"\n"))["payload"]["data"]["text"] == "a\nb\r\nc"


def test_event_line_shape() -> None:
    message = event_line({"seq": 3, "event_name": "x"}, request_id="sub", sender="o")
    assert message["event_name"] == "EVENT"
    assert message["payload"] == {
        "event": {"seq": 3, "event_name": "x"},
        "request_id": "sub",
    }


@pytest.mark.parametrize(
    "line",
    [b"\xff\xfe", b"{oops", b"[]", b'{"sender": "o"}', b'{"payload": 3}'],
)
def test_parse_reply_rejects_what_is_not_an_envelope(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_reply(line)


# ---------------------------------------------------------------- over the wire


def test_every_reply_echoes_request_id_and_protocol_version(serve: Serve) -> None:
    served = serve(agents=[(agent("forever", "thread"), "w")])
    conn = served.raw()
    cases = [
        ("ps", ()),
        ("status", ("w",)),
        ("status", ("nobody",)),
        ("frobnicate", ()),
        ("start", ("w",)),
        ("history", ({"last": "x"},)),
    ]
    codes = []
    for command, args in cases:
        line, rid = request_line(command, *args)
        conn.send(line)
        message = conn.read_json()
        assert message["event_name"] == "STATUS"
        assert message["sender"] == served.orchestrator.name
        payload = message["payload"]
        assert payload["request_id"] == rid, (command, payload)
        assert payload["protocol_version"] == "1.0"
        _iso(payload["timestamp"])
        codes.append(payload["code"])
    assert codes == [0, 0, 404, 400, 409, 400]


def test_a_bare_payload_is_served_and_its_request_id_echoed(serve: Serve) -> None:
    served = serve()
    conn = served.raw()
    line, rid = request_line("status", bare=True)
    conn.send(line)
    payload = conn.read_json()["payload"]
    assert payload["status"] == "success"
    assert payload["request_id"] == rid
    assert payload["data"]["name"] == served.orchestrator.name


def test_a_request_without_request_id_gets_a_null_one(serve: Serve) -> None:
    conn = serve().raw()
    conn.send(b'{"command": "ps"}\n')
    payload = conn.read_json()["payload"]
    assert payload["status"] == "success"
    assert payload["request_id"] is None
    assert payload["protocol_version"] == "1.0"


def test_a_malformed_request_with_a_request_id_echoes_it(serve: Serve) -> None:
    conn = serve().raw()
    conn.send(_line({"command": "ps", "args": "x", "request_id": "keep-me"}) + b"\n")
    payload = conn.read_json()["payload"]
    assert payload["code"] == 400
    assert payload["error_type"] == "ProtocolError"
    assert payload["request_id"] == "keep-me"
