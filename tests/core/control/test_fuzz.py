"""Fuzz: 10,000+ random and malformed lines over several connections at once."""

from __future__ import annotations

import json
import random
import socket
import string
import threading
from typing import Any

from pyorchestrate.core.control.protocol import parse_request
from pyorchestrate.core.errors import ProtocolError
from pyorchestrate.core.orchestrator.states import ACTIVE_STATES, AgentState
from tests.agents import agent

from .conftest import RawConn, Serve

SEED = 20261125
CONNECTIONS = 4
LINES_PER_CONNECTION = 2600  # 10,400 in all
BATCH = 100
CODES = {0, 400, 403, 404, 409, 500}
COMMANDS = [
    "ps",
    "status",
    "dependencies",
    "start",
    "stop",
    "restart",
    "commands",
    "history",
    "history-stats",
    "stats",
]
NEVER = {
    "shutdown",
    "subscribe",
}  # would end the run, or turn a connection into a stream
AGENTS = ["w", "q", "ghost", ""]


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.randint(-(2**70), 2**70)
    if kind == 1:
        return rng.random() * 10 ** rng.randint(-5, 300)
    if kind == 2:
        return "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 20)))
    if kind == 3:
        return rng.choice(AGENTS + COMMANDS)
    if kind == 4:
        return rng.choice([None, True, False, "", 0, -1])
    if kind == 5:
        return "".join(chr(rng.randint(0x80, 0x2FFF)) for _ in range(rng.randint(1, 8)))
    if kind == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["last", "agent", "event_name", "type", "after_seq", "x", ""]
    return {rng.choice(keys): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _request(rng: random.Random) -> dict[str, Any]:
    command = rng.choice(COMMANDS) if rng.random() < 0.8 else _value(rng)
    if rng.random() < 0.1 and isinstance(command, str):
        command = command.upper()
    payload: dict[str, Any] = {"command": command}
    roll = rng.random()
    if roll < 0.85:
        payload["args"] = [_value(rng) for _ in range(rng.randint(0, 2))]
    elif roll < 0.9:
        payload["args"] = _value(rng)
    if rng.random() < 0.5:
        rid = _value(rng) if rng.random() < 0.2 else f"r{rng.random()}"
        payload["request_id"] = rid
    if rng.random() < 0.05:
        payload["meta"] = _value(rng)
    if rng.random() < 0.5:
        return payload
    return {
        "sender": _value(rng),
        "event_name": "COMMAND"
        if rng.random() < 0.9
        else rng.choice(["STATUS", None, 5]),
        "timestamp": _value(rng),
        "payload": payload if rng.random() < 0.95 else _value(rng),
    }


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(3)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:
            del out[min(pos, len(out) - 1)]
        elif op == 1:
            out.insert(pos, rng.randrange(256))
        elif out:
            out[min(pos, len(out) - 1)] = rng.randrange(256)
    return bytes(out)


def _line(rng: random.Random) -> bytes:
    """One random line, without its newline."""
    kind = rng.randrange(10)
    if kind == 0:  # binary noise
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
    if kind == 1:  # printable noise
        return "".join(
            rng.choice(string.printable) for _ in range(rng.randint(1, 120))
        ).encode()
    if kind == 2:  # a truncated request
        data = json.dumps(_request(rng)).encode()
        return data[: rng.randrange(1, len(data))]
    if kind == 3:  # any JSON value
        return json.dumps(_value(rng)).encode()
    if kind == 4:  # deep nesting
        depth = rng.randint(50, 5000)
        return b"[" * depth + b"]" * rng.choice([0, depth])
    if kind == 5:  # a mutated request
        return _mutate(rng, json.dumps(_request(rng)).encode())
    return json.dumps(_request(rng)).encode()  # a well-formed, often invalid, request


def _safe(line: bytes) -> bool:
    """Whether the server would not treat the line as shutdown or subscribe."""
    try:
        return parse_request(line.strip()).command not in NEVER
    except ProtocolError:
        return True


def _lines(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    lines: list[bytes] = []
    while len(lines) < count:
        line = _line(rng).replace(b"\n", b" ")
        if _safe(line):
            lines.append(line)
    return lines


def test_fuzz_then_ps_still_answers_correctly(serve: Serve) -> None:
    served = serve(
        agents=[(agent("forever", "thread"), "w"), (agent("quick", "thread"), "q")],
        command_timeout=5.0,
    )
    served.wait_state("w", "READY")
    server = served.orchestrator.command_server
    assert server is not None
    requests_before = server.requests
    failures: list[str] = []
    sent = [0] * CONNECTIONS

    def run(index: int) -> None:
        try:
            conn = RawConn(served.path, timeout=15.0)
        except OSError as exc:  # reported below, not lost in a thread
            failures.append(f"connection {index} could not connect: {exc!r}")
            return
        try:
            lines = _lines(SEED + index, LINES_PER_CONNECTION)
            for start in range(0, len(lines), BATCH):
                batch = lines[start : start + BATCH]
                conn.send(b"".join(line + b"\n" for line in batch))
                expected = sum(1 for line in batch if line.strip())
                for _ in range(expected):
                    message = json.loads(conn.read_line() or b"null")
                    payload = message["payload"]
                    if message["event_name"] != "STATUS":
                        failures.append(f"not a reply: {message}")
                    if payload["protocol_version"] != "1.0":
                        failures.append(f"version: {payload}")
                    if payload["code"] not in CODES:
                        failures.append(f"code: {payload}")
                    if (payload["status"] == "success") != (payload["code"] == 0):
                        failures.append(f"status/code: {payload}")
                sent[index] += expected
        except Exception as exc:  # reported below
            failures.append(f"connection {index}: {exc!r}")
        finally:
            conn.close()

    def churn() -> None:
        """Meanwhile, connections that send half a line and vanish."""
        rng = random.Random(SEED - 1)
        for _ in range(200):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(served.path)
                sock.sendall(_line(rng).replace(b"\n", b" ")[:50])
            except (BrokenPipeError, ConnectionResetError):
                pass  # a clean close by the server (e.g. at its connection limit)
            except OSError as exc:
                failures.append(f"churn: {exc!r}")
            finally:
                sock.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CONNECTIONS)]
    threads.append(threading.Thread(target=churn))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert failures[:5] == []
    assert sum(sent) >= 10_000
    assert server.requests - requests_before == sum(sent)

    # A valid ps still answers, correctly (once what the fuzz started has settled).
    for name in ("w", "q"):
        served.wait_state(name, "READY", "TERMINATED", "FAILED")
    conn = served.raw()
    payload = conn.reply("ps")
    assert payload["status"] == "success", payload
    data = payload["data"]
    agents = {a["agent_name"]: a for a in data["agents"]}
    assert list(agents) == ["w", "q"]
    for name, row in agents.items():
        assert AgentState(row["lifecycle_state"]) is AgentState(served.state(name))
    active = [
        a for a in agents.values() if AgentState(a["lifecycle_state"]) in ACTIVE_STATES
    ]
    assert data["running_count"] == len(active)
    assert data["waiting_count"] == sum(a["in_queue"] for a in agents.values())
    assert data["max_workers"] == served.orchestrator.config.max_workers
    assert served.client().status()["total_agents"] == 2
