"""NotifierState on its own: the SQLite file, outbox rows, eviction, mutes, stats, owners.

Time is a fake clock wherever expiry or staleness matters; the only real waits are
for another process to finish writing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifiers import Notification, Severity
from notifiers.state import (
    SCHEMA_VERSION,
    Mute,
    NotifierState,
    OutboxState,
    default_state_path,
    notification_from_json,
    notification_to_json,
)

ROOT = Path(__file__).resolve().parents[3]


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "notify.sqlite3"


@pytest.fixture
def state(path: Path, clock: Clock) -> Iterator[NotifierState]:
    with NotifierState(path, clock=clock) as opened:
        yield opened


def note(title: str = "alert", **fields: object) -> Notification:
    return Notification(title, "body", **fields)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the file


class TestFile:
    def test_created_private_in_wal_mode_with_the_schema(self, path: Path) -> None:
        with NotifierState(path):
            pass
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'"
                )
            }
        finally:
            conn.close()
        assert {"outbox", "mutes", "channel_stats", "owners", "meta"} <= tables

    def test_reopening_keeps_the_rows(self, path: Path) -> None:
        with NotifierState(path) as first:
            first.put(note("kept"), ["a"])
        with NotifierState(path) as second:
            assert [r.notification().title for r in second.rows()] == ["kept"]

    def test_a_newer_schema_is_refused(self, path: Path) -> None:
        with NotifierState(path):
            pass
        conn = sqlite3.connect(path)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.close()
        with pytest.raises(sqlite3.DatabaseError, match="newer version"):
            NotifierState(path)

    def test_max_outbox_must_be_positive(self, path: Path) -> None:
        with pytest.raises(ValueError, match="max_outbox"):
            NotifierState(path, max_outbox=0)

    def test_default_path_follows_xdg_state_home(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
        assert default_state_path() == tmp_path / "pyorchestrate" / "notify.sqlite3"
        monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
        home = Path.home() / ".local" / "state" / "pyorchestrate" / "notify.sqlite3"
        assert default_state_path() == home
        monkeypatch.delenv("XDG_STATE_HOME")
        assert default_state_path() == home


# ------------------------------------------------------------------ outbox


class TestOutbox:
    def test_rows_keep_the_order_of_put_and_rebuild_the_notification(
        self, state: NotifierState, clock: Clock
    ) -> None:
        when = dt.datetime(
            2026, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))
        )
        first = note(
            "first",
            severity=Severity.ERROR,
            agent="worker-1",
            event="agent_error",
            timestamp=when,
            generation=3,
            error="Boom: x",
        )
        second = note("second")
        ids_first = state.put(first, ["a", "b"], owner="me")
        ids_second = state.put(second, ["a"])
        assert ids_first["a"] is not None and ids_first["b"] is not None
        assert ids_second["a"] is not None
        assert ids_first["a"] < ids_first["b"] < ids_second["a"]

        rows = state.rows()
        assert [(r.channel, r.notification().title) for r in rows] == [
            ("a", "first"),
            ("b", "first"),
            ("a", "second"),
        ]
        assert rows[0].uid == rows[1].uid != rows[2].uid
        assert all(r.state is OutboxState.PENDING for r in rows)
        assert (rows[0].owner, rows[2].owner) == ("me", None)
        assert rows[0].created == rows[0].updated == clock.now
        rebuilt = rows[0].notification()
        for field in ("title", "body", "severity", "agent", "event", "timestamp"):
            assert getattr(rebuilt, field) == getattr(first, field), field
        assert (rebuilt.generation, rebuilt.error, rebuilt.host) == (
            3,
            "Boom: x",
            first.host,
        )
        assert rebuilt.severity is Severity.ERROR
        assert rebuilt.id != first.id  # ids are per process
        assert state.rows(channels=["b"])[0].id == ids_first["b"]
        assert rows[0].summary()["title"] == "first"
        assert rows[0].summary()["severity"] == int(Severity.ERROR)

    def test_nothing_is_stored_twice(self, state: NotifierState) -> None:
        notification = note()
        assert state.put(notification, ["a"], uid="u-1")["a"] is not None
        assert state.put(notification, ["a"], uid="u-1") == {"a": None}
        again = state.put(notification, ["a", "b"], uid="u-1")
        assert again["a"] is None and again["b"] is not None
        assert len(state.rows()) == 2

    def test_put_many_is_one_transaction_in_order(self, state: NotifierState) -> None:
        before = state.version()
        result = state.put_many(
            [(note(f"n{i}"), ["a", "b"]) for i in range(5)], owner="me"
        )
        assert len(result) == 5
        ids = [r[c] for r in result for c in ("a", "b")]
        assert ids == sorted(ids)
        assert [r.notification().title for r in state.rows(channels=["a"])] == [
            f"n{i}" for i in range(5)
        ]
        assert state.version() == before  # our own writes of rows are not "notable"

    def test_failed_dead_delivered(self, state: NotifierState, clock: Clock) -> None:
        ids = [state.put(note(f"n{i}"), ["a"], owner="me")["a"] for i in range(3)]
        first, second, third = (i for i in ids if i is not None)
        clock.now += 5
        assert state.failed(first, attempts=5, error="down ***", error_class="X")
        assert state.failed(first, attempts=3, error="still down")
        assert state.dead(second, attempts=1, error="chat not found")
        row = state.rows(ids=[first])[0]
        assert (row.state, row.attempts, row.last_error, row.error_class) == (
            OutboxState.FAILED,
            8,
            "still down",
            None,
        )
        assert row.updated == clock.now > row.created
        assert [r.id for r in state.pending("a", owner="me")] == [first, third]
        assert state.pending("a", owner="other") == []
        assert state.pending("a", owner="me", limit=1)[0].id == first
        assert state.counts() == {"a": {"failed": 1, "dead": 1, "pending": 1}}
        assert state.delivered([first, third]) == 2
        assert state.delivered([first]) == 0
        assert state.delivered([]) == 0
        assert not state.failed(first)  # gone
        assert [r.id for r in state.rows()] == [second]

    def test_eviction_dead_then_failed_then_oldest_pending_counted(
        self, path: Path
    ) -> None:
        with NotifierState(path, max_outbox=4) as state:
            ids = [state.put(note(f"n{i}"), ["a"])["a"] for i in range(3)]
            b = state.put(note("b0"), ["b"])["b"]
            assert None not in ids and b is not None
            state.failed(ids[1])  # type: ignore[arg-type]
            state.dead(ids[2])  # type: ignore[arg-type]
            assert state.evicted() == 0

            state.put(note("n3"), ["a"])  # 5 rows: the dead one goes
            assert [r.notification().title for r in state.rows()] == [
                "n0",
                "n1",
                "b0",
                "n3",
            ]
            state.put(note("n4"), ["a"])  # then the failed one
            assert "n1" not in [r.notification().title for r in state.rows()]
            state.put(note("n5"), ["a"])  # then the oldest pending
            assert [r.notification().title for r in state.rows()] == [
                "b0",
                "n3",
                "n4",
                "n5",
            ]
            state.put_many([(note(f"m{i}"), ["b"]) for i in range(3)])
            assert len(state.rows()) == 4
            assert state.evicted() == 6
            assert state.evicted("a") == 5
            assert state.evicted("b") == 1
            assert state.evicted("nope") == 0

    def test_purge_by_filters(self, state: NotifierState, clock: Clock) -> None:
        old = state.put(note("old"), ["a", "b"])
        clock.now += 100
        new = state.put(note("new"), ["a", "b"])
        assert new["b"] is not None
        state.dead(new["b"])
        assert state.purge(older_than=clock.now - 50) == 2
        assert state.purge(channels=["a"], states=["dead"]) == 0
        assert state.purge(states=[OutboxState.DEAD]) == 1
        assert state.purge(ids=[new["a"] or 0]) == 1
        assert state.rows() == []
        assert old["a"] is not None
        state.put(note("x"), ["a"])
        assert state.purge() == 1

    def test_replay_makes_rows_pending_and_unowned(self, state: NotifierState) -> None:
        ids = [state.put(note(f"n{i}"), ["a"], owner="me")["a"] or 0 for i in range(3)]
        state.failed(ids[0])
        state.dead(ids[1])
        before = state.version()
        assert state.replay() == 2  # failed and dead, by default
        assert state.version() != before
        rows = state.rows()
        assert [r.state for r in rows] == [OutboxState.PENDING] * 3
        assert [r.owner for r in rows] == [None, None, "me"]
        state.dead(ids[0])
        assert state.replay(ids=[ids[0]], states=["dead"]) == 1
        assert state.replay(channels=["other"]) == 0

    def test_notification_json_is_forward_compatible(self) -> None:
        original = note("t", severity=Severity.WARNING, agent="a")
        data = json.loads(notification_to_json(original))
        data["a_field_from_the_future"] = [1, 2]
        del data["agent"]
        rebuilt = notification_from_json(json.dumps(data))
        assert rebuilt.title == "t"
        assert rebuilt.severity is Severity.WARNING
        assert rebuilt.agent is None


# ------------------------------------------------------------------ mutes


class TestMutes:
    def test_expiry_follows_the_clock(self, state: NotifierState, clock: Clock) -> None:
        mute = state.mute("channel", "tele*", duration=60, reason="maintenance")
        assert mute == Mute(
            channel="tele*",
            until=clock.now + 60,
            created=clock.now,
            reason="maintenance",
        )
        assert (mute.kind, mute.value) == ("channel", "tele*")
        assert state.is_muted(channel="telegram") == mute
        assert state.is_muted(channel="email") is None
        assert state.is_muted(agent="telegram") is None  # another kind
        clock.now += 59.9
        assert state.is_muted(channel="telegram") is not None
        clock.now += 0.1
        assert state.is_muted(channel="telegram") is None
        assert state.mutes() == []
        assert state.mutes(include_expired=True) == [mute]
        assert state.prune_mutes() == 1
        assert state.mutes(include_expired=True) == []

    def test_agent_and_event_mutes(self, state: NotifierState, clock: Clock) -> None:
        state.mute("agent", "worker-*", until=clock.now + 10)
        state.mute("event", "AGENT_ERROR")
        assert state.is_muted(agent="worker-3") is not None
        assert state.is_muted(agent="db") is None
        assert state.is_muted(event="agent_error") is not None  # case-insensitive
        assert state.is_muted(event="agent_ready") is None
        clock.now += 1e6
        assert state.is_muted(event="agent_error") is not None  # no expiry
        assert [m.kind for m in state.mutes()] == ["event"]

    def test_unmute_and_mute_again(self, state: NotifierState, clock: Clock) -> None:
        state.mute("channel", "email", duration=10)
        state.mute("channel", "email", duration=100)  # replaces the expiry
        [mute] = state.mutes()
        assert mute.until == clock.now + 100
        assert state.unmute("channel", "email")
        assert not state.unmute("channel", "email")
        assert state.is_muted(channel="email") is None

    def test_bad_mutes_are_refused(self, state: NotifierState) -> None:
        with pytest.raises(ValueError, match="kind"):
            state.mute("host", "x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty"):
            state.mute("agent", "")
        with pytest.raises(ValueError, match="not both"):
            state.mute("agent", "a", until=1.0, duration=1.0)
        with pytest.raises(ValueError, match="positive"):
            state.mute("agent", "a", duration=0)

    def test_another_connection_sees_a_mute_change(self, path: Path) -> None:
        with NotifierState(path) as first, NotifierState(path) as second:
            seen = first.version()
            assert first.version() == seen
            second.mute("channel", "email", duration=60)
            assert first.version() != seen
            assert first.is_muted(channel="email") is not None
            own = first.version()
            first.unmute("channel", "email")
            assert first.version() != own
            assert second.is_muted(channel="email") is None


# ------------------------------------------------------------------ stats


def test_stats_round_trip(state: NotifierState, clock: Clock) -> None:
    saved = {
        "telegram": {"sent": 3, "failed": 1, "last_success": 12.5, "last_error": "x"},
        "email": {"sent": 0, "last_success": None, "last_error": None},
    }
    state.save_stats(saved)
    loaded = state.load_stats()
    assert set(loaded) == {"telegram", "email"}
    assert loaded["telegram"]["sent"] == 3
    assert loaded["telegram"]["last_error"] == "x"
    assert loaded["telegram"]["saved_at"] == clock.now
    assert loaded["telegram"]["pid"] == os.getpid()
    clock.now += 1
    state.save_stats({"telegram": {"sent": 4}})
    assert state.load_stats()["telegram"]["sent"] == 4
    assert state.load_stats()["email"]["sent"] == 0


# ------------------------------------------------------------------ owners


class TestOwners:
    def test_a_live_owner_keeps_its_rows_until_it_releases_them(
        self, state: NotifierState
    ) -> None:
        state.register("one")
        state.put_many([(note(f"n{i}"), ["a", "b"]) for i in range(2)], owner="one")
        state.put(note("free"), ["a"])
        assert state.claim("two", ["a"]) == {"a": 1}  # only the unowned row
        state.release("one")
        assert state.claim("two", ["a"]) == {"a": 2}
        assert state.claim("two", ["a", "b"]) == {"b": 2}
        assert {r.owner for r in state.rows()} == {"two"}
        assert state.claim("two", []) == {}

    def test_a_silent_owner_goes_stale(
        self, state: NotifierState, clock: Clock
    ) -> None:
        state.register("quiet")
        state.put(note(), ["a"], owner="quiet")
        clock.now += 29
        assert state.claim("two", ["a"]) == {}
        state.heartbeat("quiet")
        clock.now += 29
        assert state.claim("two", ["a"]) == {}
        clock.now += 2
        assert state.claim("two", ["a"], stale_after=30) == {"a": 1}

    def test_a_dead_process_loses_its_rows_at_once(
        self, state: NotifierState, path: Path
    ) -> None:
        gone = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        pid = int(gone.stdout)
        conn = sqlite3.connect(path)
        with conn:
            conn.execute(
                "INSERT INTO owners VALUES ('dead', ?, ?, NULL, ?, ?)",
                (socket.gethostname(), pid, state.clock(), state.clock()),
            )
        conn.close()
        state.put(note(), ["a"], owner="dead")
        state.put(note(), ["a"], owner="never-registered")
        assert state.claim("two", ["a"]) == {"a": 2}

    def test_dead_and_delivered_rows_are_not_claimed(
        self, state: NotifierState
    ) -> None:
        ids = [state.put(note(), ["a"])["a"] or 0 for _ in range(3)]
        state.dead(ids[0])
        state.failed(ids[1])
        assert state.claim("two", ["a"]) == {"a": 2}


# ------------------------------------------------------------------ processes


def test_two_processes_write_at_once(path: Path) -> None:
    count = 200
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with NotifierState(path) as state:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.notifiers.outbox_main",
                "write",
                str(path),
                str(count),
                "child",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            for i in range(count):
                state.put(note(f"parent-{i}"), ["w"])
        finally:
            out, err = child.communicate(timeout=30)
        assert child.returncode == 0, err
        assert out.strip() == "DONE"
        titles = [r.notification().title for r in state.rows()]
    assert len(titles) == 2 * count == len(set(titles))
    for tag in ("parent", "child"):
        mine = [t for t in titles if t.startswith(tag)]
        assert mine == [f"{tag}-{i}" for i in range(count)]  # each in its own order


def test_errors_are_stored_redacted(state: NotifierState) -> None:
    from notifiers.redact import SECRETS

    secret = "state-secret-4f1a9c"
    SECRETS.add(secret)
    row = state.put(note(), ["a"])["a"]
    assert row is not None
    state.failed(row, error=f"POST {secret} refused")
    assert state.rows()[0].last_error == "POST *** refused"
    state.save_stats({"a": {"last_error": f"denied {secret}"}})
    assert state.load_stats()["a"]["last_error"] == "denied ***"


def test_a_notification_keeps_its_uid_and_is_stored_once_per_channel(
    state: NotifierState,
) -> None:
    note = Notification("✖ worker failed", "boom")
    again = Notification("✖ worker failed", "boom")
    assert note.uid != again.uid  # two alerts, even if alike
    first = state.put(note, ["telegram", "email"])
    second = state.put(note, ["telegram", "email"])  # the same alert: not twice
    assert set(first) == {"telegram", "email"}
    assert all(v is None for v in second.values())
    (row, *_) = state.rows(channels=["telegram"])
    assert row.notification().uid == note.uid  # survives the round trip
