"""The dispatcher's parts: each object owns its job (issue 14, item 1).

* the tenacity retrying object is built once per channel, not per delivery;
* without a state file the null outbox stands in: no SQLite outbox or state code
  runs on an alert's way (with one, it does).

(That no class is a chain of the project's classes is checked for every package
in tests/test_architecture.py.)
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

from tenacity import AsyncRetrying

import notifiers
import notifiers.dispatcher
from notifiers import DeliveryStatus, Dispatcher, Notification, RetryPolicy
from notifiers.errors import TransientDeliveryError
from notifiers.testing import FlakyNotifier, RecordingNotifier

MakeDispatcher = Callable[..., Dispatcher]

STATE_CODE = Path(notifiers.__file__).parent / "state"
DISPATCHER_CODE = Path(notifiers.dispatcher.__file__).parent


class CountingPolicy(RetryPolicy):
    """A retry policy that counts the retrying objects built from it."""

    built: ClassVar[list[str]] = []

    def retrying(self, **kwargs: Any) -> AsyncRetrying:
        CountingPolicy.built.append(kwargs.get("name", ""))
        return super().retrying(**kwargs)


def test_the_retrying_object_is_built_once_per_channel(
    make_dispatcher: MakeDispatcher, fake_sleep: Callable[[float], Any]
) -> None:
    CountingPolicy.built.clear()
    flaky = FlakyNotifier([TransientDeliveryError("down")] * 3)
    steady = RecordingNotifier(name="steady")
    dispatcher = make_dispatcher(
        [flaky, steady],
        policy=CountingPolicy(max_attempts=5, budget=1e9),
        sleep=fake_sleep,
    )
    for index in range(6):
        dispatcher.submit(Notification(f"n{index}", "body"))
    assert dispatcher.flush(10)
    results = list(dispatcher.results)
    assert len(results) == 12
    assert {r.status for r in results} == {DeliveryStatus.DELIVERED}
    assert max(r.attempts for r in results if r.channel == "flaky") == 4  # retried
    assert dispatcher.stats()["flaky"].retried == 3
    assert sorted(CountingPolicy.built) == ["flaky", "steady"]


def _code_run_by_dispatcher(
    make_dispatcher: MakeDispatcher, **kwargs: Any
) -> set[tuple[Path, str]]:
    """Every (file, function) the dispatcher's thread ran while it was built, given
    three alerts, flushed and closed."""
    ran: set[tuple[Path, str]] = set()

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            code = frame.f_code
            ran.add((Path(code.co_filename), code.co_qualname))

    threading.setprofile(profile)  # for the threads started from now on
    try:
        dispatcher = make_dispatcher([RecordingNotifier()], **kwargs)
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
    for index in range(3):
        dispatcher.submit(Notification(f"n{index}", "body"))
    assert dispatcher.flush(10)
    assert dispatcher.close(timeout=5) == []
    assert [r.status for r in dispatcher.results] == [DeliveryStatus.DELIVERED] * 3
    return ran


def _outbox_code(ran: set[tuple[Path, str]]) -> set[tuple[Path, str]]:
    return {
        (path, name)
        for path, name in ran
        if path.parent == STATE_CODE or path == DISPATCHER_CODE / "_sqlite_outbox.py"
    }


def test_without_a_state_file_no_outbox_code_runs(
    make_dispatcher: MakeDispatcher, tmp_path: Path
) -> None:
    ran = _code_run_by_dispatcher(make_dispatcher)
    assert any(name == "DeliveryStep.__call__" for _, name in ran)  # it did profile
    assert _outbox_code(ran) == set()
    assert not any(name.startswith("SqliteOutbox.") for _, name in ran)
    # The same with a state file runs it: the check above can see it.
    with_state = _code_run_by_dispatcher(make_dispatcher, state=tmp_path / "state.db")
    names = {name for _, name in _outbox_code(with_state)}
    assert {"SqliteOutbox.write_ahead", "SqliteOutbox.delivered"} <= names
    assert any(path.parent == STATE_CODE for path, _ in _outbox_code(with_state))


class SlowThenDown(RecordingNotifier):
    """Its first attempt takes ``first`` seconds (real time), then fails; so do
    the others, at once."""

    def __init__(self, first: float) -> None:
        super().__init__(name="slow")
        self.first = first
        self.attempts = 0

    async def send(self, notification: Notification) -> None:
        self.attempts += 1
        if self.attempts == 1:
            await asyncio.sleep(self.first)
        raise TransientDeliveryError("down")


def test_the_retry_budget_counts_the_first_attempt(
    make_dispatcher: MakeDispatcher, fake_sleep: Callable[[float], Any]
) -> None:
    """The first attempt is made outside tenacity; the budget still includes it:
    a first attempt longer than the whole budget is not retried."""
    slow = SlowThenDown(first=0.3)
    dispatcher = make_dispatcher(
        [slow],
        policy=RetryPolicy(max_attempts=5, budget=0.2, initial=0, jitter=0),
        sleep=fake_sleep,
    )
    dispatcher.submit(Notification("n", "body"))
    assert dispatcher.flush(10)
    (result,) = dispatcher.results
    assert result.status is DeliveryStatus.FAILED
    assert (result.attempts, slow.attempts) == (1, 1)
    # With room in the budget, the same failure is retried up to max_attempts.
    again = SlowThenDown(first=0.0)
    roomy = make_dispatcher(
        [again], policy=RetryPolicy(max_attempts=3, budget=60), sleep=fake_sleep
    )
    roomy.submit(Notification("n", "body"))
    assert roomy.flush(10)
    assert [r.attempts for r in roomy.results] == [3]


def test_without_a_state_file_no_state_code_is_loaded() -> None:
    """A dispatcher without a state file delivers, flushes and closes without
    loading sqlite3, the state package's modules or the SQLite outbox (checked in a
    fresh interpreter)."""
    code = """
import sys
from notifiers import Dispatcher, Notification
from notifiers.testing import RecordingNotifier
channel = RecordingNotifier()
dispatcher = Dispatcher([channel])
dispatcher.submit(Notification("t", "body"))
assert dispatcher.flush(10)
dispatcher.close()
assert len(channel.sent) == 1
print(sorted(m for m in sys.modules if "sqlite" in m or m.startswith("notifiers.state.")))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines()[-1] == "[]", result.stdout


def test_submit_leaves_waking_the_loop_to_the_doorbell(
    make_dispatcher: MakeDispatcher,
) -> None:
    """``submit()`` on an idle dispatcher does not write to the loop's self-pipe
    itself (13-18 µs on a small VM, more when it waits for the GIL behind the
    woken loop): the doorbell's thread does, and the alert is still delivered."""
    channel = RecordingNotifier()
    dispatcher = make_dispatcher([channel])
    called: list[str] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            called.append(frame.f_code.co_qualname)

    for index in range(3):  # idle each time: every submit() needs a wake-up
        sys.setprofile(profile)
        try:
            dispatcher.submit(Notification(f"n{index}", "body"))
        finally:
            sys.setprofile(None)
        channel.wait_for(index + 1)
    assert "Intake.put" in called  # it did profile the submit
    assert not [
        name for name in called if "call_soon" in name or "_write_to_self" in name
    ]
    assert [n.title for n in channel.sent] == ["n0", "n1", "n2"]
