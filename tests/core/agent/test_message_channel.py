"""MessageChannel: whole messages between any number of threads and processes, no
named semaphore, puts that never wait for a reader."""

from __future__ import annotations

import pickle
import queue
import threading

import pytest

from pyorchestrate.core.agent.flavours import process_context
from pyorchestrate.core.utilities.messaging import (
    MessageChannel,
    MessageType,
    ServiceMessage,
)
from tests.agents import ProbeThread

from .test_process_event import _named_semaphores


def _message(sender: str, n: int, size: int = 0) -> ServiceMessage:
    return ServiceMessage(sender, MessageType.DATA, {"n": n, "blob": "x" * size})


def _writer(channel: MessageChannel, sender: str, count: int, size: int) -> None:
    for n in range(count):
        channel.put(_message(sender, n, size))


def test_put_get_in_order_and_empty() -> None:
    channel = MessageChannel()
    try:
        with pytest.raises(queue.Empty):
            channel.get_nowait()
        with pytest.raises(queue.Empty):
            channel.get(timeout=0.01)
        for n in range(3):
            channel.put(_message("a", n))
        assert [m.payload["n"] for m in channel.drain()] == [0, 1, 2]
        assert channel.drain() == []
    finally:
        channel.close()


def test_puts_never_wait_for_a_reader_and_keep_their_order() -> None:
    # Far more than the socket holds: the rest waits in this process's buffer.
    channel = MessageChannel()
    try:
        for n in range(3000):
            channel.put(_message("a", n, size=1000))
        got = [channel.get(timeout=10).payload["n"] for _ in range(3000)]
        assert got == list(range(3000))
        assert channel.flush(10)
    finally:
        channel.close()


@pytest.mark.process
@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_many_processes_and_threads_write_whole_messages(method: str) -> None:
    channel = MessageChannel()
    before = _named_semaphores()
    ctx = process_context(method)  # type: ignore[arg-type]
    count, size = 200, 20_000  # larger than a pipe writes at once
    writers = [
        ctx.Process(target=_writer, args=(channel, f"p{k}", count, size))  # type: ignore[attr-defined]
        for k in range(3)
    ]
    threads = [
        threading.Thread(target=_writer, args=(channel, f"t{k}", count, size))
        for k in range(2)
    ]
    try:
        for w in [*writers, *threads]:
            w.start()
        received: dict[str, list[int]] = {}
        for _ in range(5 * count):
            message = channel.get(timeout=30)
            assert message.payload["blob"] == "x" * size  # never torn
            received.setdefault(message.sender, []).append(message.payload["n"])
        assert _named_semaphores() - before == set()
    finally:
        for w in writers:
            w.join(30)
        for t in threads:
            t.join(30)
        channel.close()
    assert all(w.exitcode == 0 for w in writers)
    assert received == {s: list(range(count)) for s in ("p0", "p1", "p2", "t0", "t1")}


def _put_and_leave(channel: MessageChannel, count: int) -> None:
    for n in range(count):
        channel.put(_message("leaver", n, size=1000))


@pytest.mark.process
def test_a_process_that_ends_sends_what_it_buffered_first() -> None:
    channel = MessageChannel()
    ctx = process_context("forkserver")
    child = ctx.Process(target=_put_and_leave, args=(channel, 2000))  # type: ignore[attr-defined]
    try:
        child.start()
        got = [channel.get(timeout=30).payload["n"] for _ in range(2000)]
        child.join(30)
        assert child.exitcode == 0
        assert got == list(range(2000))
    finally:
        channel.close()


def test_a_message_too_large_for_a_packet_is_a_clear_error() -> None:
    channel = MessageChannel()
    try:
        with pytest.raises(ValueError, match="does not fit in one MessageChannel"):
            channel.put(_message("a", 0, size=64 << 20))
        channel.put(_message("a", 1))  # the channel goes on
        assert channel.get(timeout=5).payload["n"] == 1
    finally:
        channel.close()


def test_after_close_puts_are_refused_and_it_reaches_children_only_at_start() -> None:
    channel = MessageChannel()
    with pytest.raises(RuntimeError, match="inheritance"):
        pickle.dumps(channel)
    channel.close()
    with pytest.raises(ValueError, match="closed"):
        channel.put(_message("a", 0))


def test_an_agent_says_why_its_channel_refused_a_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    channel = MessageChannel()
    probe = ProbeThread("p", msg_channel=channel)
    try:
        with caplog.at_level("WARNING", logger="pyorchestrate.agent.p"):
            probe.send_message({"blob": "x" * (64 << 20)})  # logged, not raised
        assert "refused a message" in caplog.text
        assert "does not fit in one MessageChannel packet" in caplog.text
    finally:
        channel.close()
