"""``pyorchestrate notify status|outbox|mute|unmute|mutes`` on a state file in tmp_path.

The rows are written with the :class:`~notifiers.state.NotifierState` API (as a
dispatcher writes them); the commands run in-process. Secrets are registered only
*after* they were stored, so a masked secret in the output proves the CLI masked it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from notifiers import Dispatcher, Notification, Severity
from notifiers import cli as notify_cli
from notifiers.cli import parse_duration
from notifiers.errors import PermanentDeliveryError
from notifiers.redact import SECRETS
from notifiers.state import NotifierState
from notifiers.testing import FlakyNotifier

from ._support import WIDTH
from .conftest import Invoke


class Written:
    """What the ``state_file`` fixture wrote, and the secret in it."""

    def __init__(self, path: Path, secret: str, ids: dict[str, int]) -> None:
        self.path = path
        self.secret = secret
        self.ids = ids

    @property
    def opt(self) -> list[str]:
        return ["--state-path", str(self.path)]


def _note(title: str, *, agent: str = "boom") -> Notification:
    return Notification(
        title=title,
        body="body",
        severity=Severity.ERROR,
        agent=agent,
        event="agent_error",
    )


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No notifier setting from the environment; the default state under tmp_path;
    the notify consoles wide and without colour."""
    for name in list(os.environ):
        if name.startswith("PYORCHESTRATE_NOTIFY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    out = Console(highlight=False, width=WIDTH, color_system=None)
    err = Console(stderr=True, highlight=False, width=WIDTH, color_system=None)
    # Every module of the notify group that prints (each imported the consoles).
    for name, module in list(sys.modules.items()):
        if name == notify_cli.__name__ or name.startswith(notify_cli.__name__ + "."):
            for attr, console in (("console", out), ("err_console", err)):
                if attr in vars(module):
                    monkeypatch.setattr(module, attr, console)
    # Secrets other tests registered in this process (e.g. a sink's "/hook" path)
    # would mask parts of these tests' texts: start from none, restore afterwards.
    monkeypatch.setattr(SECRETS, "_secrets", frozenset())
    monkeypatch.setattr(SECRETS, "_pattern", None)
    yield


@pytest.fixture
def written(tmp_path: Path) -> Written:
    """Rows in every state on two channels, counters saved by this process."""
    secret = f"/hook-{uuid.uuid4().hex}"
    path = tmp_path / "state" / "notify.sqlite3"
    with NotifierState(path) as state:
        ids: dict[str, int] = {}
        for key, title, channel in (
            ("failed", "boom failed", "webhook"),
            ("dead", "boom FATAL", "webhook"),
            ("pending", "boom again", "webhook"),
            ("tg_failed", "db down", "telegram"),
        ):
            row = state.put(_note(title), [channel])[channel]
            assert row is not None
            ids[key] = row
        state.failed(
            ids["failed"],
            attempts=3,
            error=f"HTTP 503 from https://hooks.example{secret}",
            error_class="TransientDeliveryError",
        )
        state.dead(
            ids["dead"],
            attempts=1,
            error="HTTP 401",
            error_class="PermanentDeliveryError",
        )
        state.failed(ids["tg_failed"], attempts=2, error="TimedOut")
        state.save_stats(
            {
                "webhook": {
                    "sent": 7,
                    "failed": 2,
                    "retried": 5,
                    "suppressed": 1,
                    "queued": 0,
                    "last_success": time.time() - 120,
                    "last_error": f"HTTP 503 from https://hooks.example{secret}",
                },
                "telegram": {
                    "sent": 3,
                    "failed": 1,
                    "retried": 0,
                    "suppressed": 0,
                    "queued": 2,
                    "last_success": None,
                    "last_error": "TimedOut",
                },
            }
        )
        # Stored as it was (not yet known as a secret): the CLI must mask it.
        assert any(secret in (r.last_error or "") for r in state.rows())
    SECRETS.add(secret)
    return Written(path, secret, ids)


def _output(result: object) -> str:
    return str(getattr(result, "stdout", "")) + str(getattr(result, "stderr", ""))


# ---------------------------------------------------------------- status
def test_status_shows_each_channel_s_counters_and_the_outbox(
    written: Written, cli: Invoke
) -> None:
    result = cli("notify", "status", *written.opt)
    assert result.exit_code == 0, _output(result)
    out = result.stdout
    header = next(line for line in out.splitlines() if "CHANNEL" in line)
    assert header.split() == [
        "CHANNEL",
        "SENT",
        "FAILED",
        "RETRIED",
        "SUPPRESSED",
        "QUEUED",
        "OUTBOX",
        "LAST",
        "SUCCESS",
        "LAST",
        "ERROR",
    ]
    webhook = next(line for line in out.splitlines() if line.startswith(" webhook"))
    assert webhook.split()[1:6] == ["7", "2", "5", "1", "0"]
    assert "1 pending, 1 failed, 1 dead" in webhook
    assert "(2m ago)" in webhook or "(2m 1s ago)" in webhook
    assert "HTTP 503 from https://hooks.example***" in webhook
    telegram = next(line for line in out.splitlines() if line.startswith(" telegram"))
    assert telegram.split()[1:6] == ["3", "1", "0", "0", "2"]
    assert "never" in telegram and "1 failed" in telegram
    assert f"by pid {os.getpid()} (running)" in out
    assert "saved 0s ago" in out or "saved 1s ago" in out
    assert "outbox: 1 pending, 2 failed, 1 dead" in out
    assert written.secret not in _output(result)


def test_status_json(written: Written, cli: Invoke) -> None:
    result = cli("notify", "status", "--json", *written.opt)
    assert result.exit_code == 0, _output(result)
    data = json.loads(result.stdout)
    assert data["state_path"] == str(written.path)
    assert data["outbox"] == {"pending": 1, "failed": 2, "dead": 1}
    assert data["evicted"] == 0
    channels = {c["channel"]: c for c in data["channels"]}
    assert set(channels) == {"telegram", "webhook"}
    webhook = channels["webhook"]
    assert {k: webhook[k] for k in ("sent", "failed", "retried", "suppressed")} == {
        "sent": 7,
        "failed": 2,
        "retried": 5,
        "suppressed": 1,
    }
    assert webhook["outbox"] == {"pending": 1, "failed": 1, "dead": 1}
    assert webhook["running"] is True and webhook["pid"] == os.getpid()
    assert webhook["last_error"] == "HTTP 503 from https://hooks.example***"
    assert written.secret not in result.stdout


def test_status_says_when_the_saving_process_is_gone(
    written: Written, cli: Invoke
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with sqlite3.connect(written.path) as conn:
        conn.execute("UPDATE channel_stats SET pid = ?", (child.pid,))
    conn.close()
    result = cli("notify", "status", *written.opt)
    assert result.exit_code == 0, _output(result)
    assert f"by pid {child.pid} (not running: these are its last counters)" in (
        result.stdout
    )


def test_status_counts_evicted_rows(tmp_path: Path, cli: Invoke) -> None:
    path = tmp_path / "small.sqlite3"
    with NotifierState(path, max_outbox=2) as state:
        for n in range(5):
            state.put(_note(f"alert {n}"), ["pager"])
    result = cli("notify", "status", "--state-path", path)
    assert result.exit_code == 0, _output(result)
    assert "2 pending, 3 evicted" in result.stdout
    assert "outbox: 2 pending; 3 evicted (outbox_size reached)" in result.stdout


def test_status_of_an_empty_state(tmp_path: Path, cli: Invoke) -> None:
    path = tmp_path / "empty.sqlite3"
    NotifierState(path).close()
    result = cli("notify", "status", "--state-path", path)
    assert result.exit_code == 0, _output(result)
    assert "No channel has saved its counters" in result.stdout
    assert "outbox: empty" in result.stdout


def test_a_missing_state_file_is_named_and_not_created(
    tmp_path: Path, cli: Invoke
) -> None:
    default = tmp_path / "xdg" / "pyorchestrate" / "notify.sqlite3"
    for args in (
        ("status",),
        ("outbox", "list"),
        ("outbox", "replay"),
        ("outbox", "purge", "1"),
        ("mutes",),
        ("unmute", "--agent", "x"),
    ):
        result = cli("notify", *args)
        assert result.exit_code == 1, (args, _output(result))
        assert f"no state file at '{default}'" in result.stderr
    assert not default.parent.exists()


def test_the_state_path_comes_from_the_settings_or_the_environment(
    written: Written, tmp_path: Path, cli: Invoke
) -> None:
    config = tmp_path / "notify.toml"
    config.write_text(f'state_path = "{written.path}"\n')
    result = cli("notify", "outbox", "list", "--config", config)
    assert result.exit_code == 0, _output(result)
    assert "boom failed" in result.stdout
    result = cli(
        "notify",
        "outbox",
        "list",
        env={"PYORCHESTRATE_NOTIFY_STATE_PATH": str(written.path)},
    )
    assert result.exit_code == 0, _output(result)
    assert "boom failed" in result.stdout


def test_a_state_turned_off_or_bad_settings_are_usage_errors(
    tmp_path: Path, cli: Invoke
) -> None:
    config = tmp_path / "notify.toml"
    config.write_text('state_path = "none"\n')
    result = cli("notify", "status", "--config", config)
    assert result.exit_code == 2
    assert "the state file is off" in result.stderr
    result = cli("notify", "status", "--state-path", "none")
    assert result.exit_code == 2
    assert "the state file is off" in result.stderr
    config.write_text("queue_size = 0\n")
    result = cli("notify", "status", "--config", config)
    assert result.exit_code == 2
    assert "queue_size" in result.stderr
    not_a_state = tmp_path / "junk.sqlite3"
    not_a_state.write_text("this is not SQLite " * 100)
    result = cli("notify", "status", "--state-path", not_a_state)
    assert result.exit_code == 2
    assert "cannot open the state file" in result.stderr


def test_the_configured_secrets_are_masked_too(tmp_path: Path, cli: Invoke) -> None:
    hook_path = f"/cfg-{uuid.uuid4().hex}"
    path = tmp_path / "s.sqlite3"
    with NotifierState(path) as state:
        row = state.put(_note("x"), ["webhook"])["webhook"]
        assert row is not None
        state.failed(row, error=f"POST jsons://hooks.example{hook_path} gave 500")
    config = tmp_path / "notify.toml"
    config.write_text(
        f'state_path = "{path}"\n[webhook]\nurl = "https://hooks.example{hook_path}"\n'
    )
    result = cli("notify", "outbox", "list", "--json", "--config", config)
    assert result.exit_code == 0, _output(result)
    (listed,) = json.loads(result.stdout)
    assert listed["last_error"] == "POST jsons://*** gave 500"  # host and path
    assert hook_path not in result.stdout


# ---------------------------------------------------------------- outbox list
def test_outbox_list_shows_the_rows_in_order(written: Written, cli: Invoke) -> None:
    result = cli("notify", "outbox", "list", *written.opt)
    assert result.exit_code == 0, _output(result)
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0][:6] == ["ID", "CHANNEL", "STATE", "ATTEMPTS", "CREATED", "TITLE"]
    assert [line[:4] for line in lines[1:]] == [
        [str(written.ids["failed"]), "webhook", "failed", "3"],
        [str(written.ids["dead"]), "webhook", "dead", "1"],
        [str(written.ids["pending"]), "webhook", "pending", "0"],
        [str(written.ids["tg_failed"]), "telegram", "failed", "2"],
    ]
    assert "TransientDeliveryError: HTTP 503 from https://hooks.example***" in (
        result.stdout
    )
    assert "PermanentDeliveryError: HTTP 401" in result.stdout
    assert written.secret not in _output(result)


def test_outbox_list_filters_and_limits(written: Written, cli: Invoke) -> None:
    result = cli(
        "notify", "outbox", "list", "--state", "failed", "--limit", "1", *written.opt
    )
    assert result.exit_code == 0, _output(result)
    assert "boom failed" in result.stdout and "db down" not in result.stdout
    assert "showing the oldest 1 of 2 rows (--limit)" in result.stdout
    result = cli(
        "notify", "outbox", "list", "--channel", "telegram", "--json", *written.opt
    )
    (row,) = json.loads(result.stdout)
    assert row["id"] == written.ids["tg_failed"]
    assert (row["channel"], row["state"], row["title"]) == (
        "telegram",
        "failed",
        "db down",
    )
    result = cli("notify", "outbox", "list", "--channel", "pager", *written.opt)
    assert result.exit_code == 0
    assert "No row matches." in result.stdout
    result = cli("notify", "outbox", "list", "--state", "bogus", *written.opt)
    assert result.exit_code == 2
    assert "--state" in result.stderr


def test_outbox_list_json_masks_secrets(written: Written, cli: Invoke) -> None:
    result = cli("notify", "outbox", "list", "--json", *written.opt)
    assert result.exit_code == 0, _output(result)
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == sorted(written.ids.values())
    assert rows[0]["last_error"] == (
        "TransientDeliveryError: HTTP 503 from https://hooks.example***"
    )
    assert written.secret not in result.stdout


# ---------------------------------------------------------------- outbox replay
def test_replay_marks_the_failed_rows_pending(written: Written, cli: Invoke) -> None:
    result = cli("notify", "outbox", "replay", *written.opt)
    assert result.exit_code == 0, _output(result)
    assert "2 row(s) marked for replay (2 failed)" in result.stdout
    assert "within about a second" in result.stdout
    with NotifierState(written.path) as state:
        states = {r.id: r.state.value for r in state.rows()}
    assert states[written.ids["failed"]] == "pending"
    assert states[written.ids["tg_failed"]] == "pending"
    assert states[written.ids["dead"]] == "dead"  # only with --all-states or its id
    result = cli("notify", "outbox", "replay", *written.opt)
    assert result.exit_code == 0
    assert "No failed rows to replay." in result.stdout


def test_replay_by_channel_all_states_and_ids(written: Written, cli: Invoke) -> None:
    result = cli(
        "notify",
        "outbox",
        "replay",
        "--channel",
        "webhook",
        "--all-states",
        "--json",
        *written.opt,
    )
    assert result.exit_code == 0, _output(result)
    assert json.loads(result.stdout) == {
        "replayed": 2,
        "by_state": {"failed": 1, "dead": 1},
        "skipped": [],
    }
    with NotifierState(written.path) as state:
        assert [r.state.value for r in state.rows(channels=["telegram"])] == ["failed"]
        state.dead(written.ids["dead"], error="again")
    result = cli(
        "notify",
        "outbox",
        "replay",
        str(written.ids["dead"]),
        str(written.ids["pending"]),
        "999",
        *written.opt,
    )
    assert result.exit_code == 0, _output(result)
    assert "1 row(s) marked for replay (1 dead)" in result.stdout
    assert f"row {written.ids['pending']}: pending (already on its way)" in (
        result.stderr
    )
    assert "row 999: not in the outbox" in result.stderr
    result = cli("notify", "outbox", "replay", "999", *written.opt)
    assert result.exit_code == 1


# ---------------------------------------------------------------- outbox purge
def test_purge_refuses_without_ids_or_yes(written: Written, cli: Invoke) -> None:
    result = cli("notify", "outbox", "purge", *written.opt)
    assert result.exit_code == 2
    assert "refusing to delete from the outbox without --yes" in result.stderr
    assert "4 row(s) (1 pending, 2 failed, 1 dead)" in result.stderr
    result = cli("notify", "outbox", "purge", "--state", "dead", *written.opt)
    assert result.exit_code == 2
    assert "1 row(s) (1 dead)" in result.stderr
    with NotifierState(written.path) as state:
        assert len(state.rows()) == 4


def test_purge_by_ids_and_with_yes(written: Written, cli: Invoke) -> None:
    result = cli("notify", "outbox", "purge", str(written.ids["dead"]), *written.opt)
    assert result.exit_code == 0, _output(result)
    assert "1 row(s) deleted" in result.stdout
    result = cli(
        "notify",
        "outbox",
        "purge",
        "--channel",
        "webhook",
        "--state",
        "failed",
        "--yes",
        "--json",
        *written.opt,
    )
    assert result.exit_code == 0, _output(result)
    assert json.loads(result.stdout) == {"deleted": 1}
    with NotifierState(written.path) as state:
        left = {r.id for r in state.rows()}
    assert left == {written.ids["pending"], written.ids["tg_failed"]}
    result = cli("notify", "outbox", "purge", "12345", *written.opt)
    assert result.exit_code == 1
    assert "were not deleted" in result.stderr


def test_purge_older_than(written: Written, cli: Invoke) -> None:
    result = cli(
        "notify", "outbox", "purge", "--older-than", "1h", "--yes", *written.opt
    )
    assert result.exit_code == 0, _output(result)
    assert "0 row(s) deleted" in result.stdout
    result = cli(
        "notify", "outbox", "purge", "--older-than", "soon", "--yes", *written.opt
    )
    assert result.exit_code == 2
    assert "--older-than" in result.stderr and "not a duration" in result.stderr
    with NotifierState(written.path) as state:
        assert len(state.rows()) == 4


# ---------------------------------------------------------------- mutes
def test_mute_an_agent_then_list_and_unmute(tmp_path: Path, cli: Invoke) -> None:
    path = tmp_path / "new" / "notify.sqlite3"
    opt = ("--state-path", str(path))
    result = cli(
        "notify",
        "mute",
        "--agent",
        "worker-*",
        "--for",
        "2h",
        "--reason",
        "deploy",
        *opt,
    )
    assert result.exit_code == 0, _output(result)
    assert "Muted agent 'worker-*' for 2h" in result.stdout
    assert "created the state file" in result.stdout  # mute may come first
    with NotifierState(path) as state:
        mute = state.is_muted(agent="worker-3")
        assert mute is not None and mute.reason == "deploy"
        assert mute.until == pytest.approx(time.time() + 7200, abs=5)
        assert state.is_muted(agent="db") is None
    with NotifierState(path, clock=lambda: time.time() + 7201) as later:
        assert later.is_muted(agent="worker-3") is None  # expired on its own

    result = cli("notify", "mutes", *opt)
    assert result.exit_code == 0, _output(result)
    line = next(line for line in result.stdout.splitlines() if "worker-*" in line)
    assert line.split()[:2] == ["agent", "worker-*"]
    assert "1h 59m" in line or "2h" in line
    assert "deploy" in line

    result = cli("notify", "unmute", "--agent", "worker-*", *opt)
    assert result.exit_code == 0, _output(result)
    assert "Unmuted agent 'worker-*'." in result.stdout
    with NotifierState(path) as state:
        assert state.is_muted(agent="worker-3") is None
    result = cli("notify", "unmute", "--agent", "worker-*", *opt)
    assert result.exit_code == 1
    assert "No mute for agent 'worker-*'" in result.stderr
    result = cli("notify", "mutes", *opt)
    assert "Nothing is muted." in result.stdout


def test_mute_an_event_and_a_channel(tmp_path: Path, cli: Invoke) -> None:
    opt = ("--state-path", str(tmp_path / "m.sqlite3"))
    result = cli("notify", "mute", "--event", "agent_error", "--for", "90s", *opt)
    assert result.exit_code == 0, _output(result)
    until = time.time() + 3600
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(until))
    result = cli("notify", "mute", "--channel", "telegram", "--until", stamp, *opt)
    assert result.exit_code == 0, _output(result)
    result = cli("notify", "mutes", "--json", *opt)
    mutes = {(m["kind"], m["value"]): m for m in json.loads(result.stdout)}
    assert set(mutes) == {("event", "agent_error"), ("channel", "telegram")}
    assert 80 < mutes["event", "agent_error"]["left"] <= 90
    assert mutes["channel", "telegram"]["until"] == pytest.approx(int(until), abs=1)
    with NotifierState(tmp_path / "m.sqlite3") as state:
        assert state.is_muted(event="AGENT_ERROR") is not None
        assert state.is_muted(channel="telegram") is not None
        assert state.is_muted(channel="email") is None


def test_a_short_mute_expires(tmp_path: Path, cli: Invoke) -> None:
    path = tmp_path / "m.sqlite3"
    result = cli(
        "notify", "mute", "--agent", "a", "--for", "0.2s", "--state-path", path
    )
    assert result.exit_code == 0, _output(result)
    with NotifierState(path) as state:
        assert state.is_muted(agent="a") is not None
        time.sleep(0.25)
        assert state.is_muted(agent="a") is None
    result = cli("notify", "mutes", "--state-path", path)
    assert "Nothing is muted." in result.stdout
    result = cli("notify", "mutes", "--all", "--state-path", path)
    assert "expired" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agent", "a", "--for", "10x"], "Invalid value for '--for'"),
        (["--agent", "a", "--for", "-5m"], "Invalid value for '--for'"),
        (["--agent", "a", "--until", "yesterday"], "Invalid value for '--until'"),
        (["--agent", "a", "--until", "2001-01-01T00:00"], "is in the past"),
        (["--agent", "a"], "give exactly one of --for DURATION or --until TIME"),
        (["--agent", "a", "--for", "1m", "--until", "23:59"], "exactly one of --for"),
        (["--for", "1m"], "give exactly one of --agent, --event or --channel"),
        (["--agent", "a", "--event", "e", "--for", "1m"], "exactly one of --agent"),
    ],
)
def test_bad_mute_arguments_are_usage_errors(
    tmp_path: Path, cli: Invoke, args: list[str], message: str
) -> None:
    path = tmp_path / "m.sqlite3"
    result = cli("notify", "mute", *args, "--state-path", path)
    assert result.exit_code == 2, _output(result)
    assert message in " ".join(result.stderr.split()).replace("│", "")
    assert not path.exists()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("1d", 86_400),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("90", 90),
        ("2 min", 120),
        ("1w", 604_800),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "0s", "1h30", "5 parsecs", "-1m", "1e9"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


# ---------------------------------------------------------------- with a dispatcher
def test_status_and_list_read_what_a_dispatcher_wrote(
    tmp_path: Path, cli: Invoke
) -> None:
    """Real rows and counters: one alert delivered, one dead (permanent error whose
    text names a secret the channel registered)."""
    secret = f"/dsp-{uuid.uuid4().hex}"
    SECRETS.add(secret)
    pager = FlakyNotifier(
        [PermanentDeliveryError(f"401 from https://hooks.example{secret}")],
        name="pager",
    )
    path = tmp_path / "d.sqlite3"
    with Dispatcher([pager], state=path, rate_limits=False) as dispatcher:
        dispatcher.submit(_note("first"))
        dispatcher.submit(_note("second"))
        assert dispatcher.flush(timeout=5)
    result = cli("notify", "status", "--json", "--state-path", path)
    assert result.exit_code == 0, _output(result)
    (channel,) = json.loads(result.stdout)["channels"]
    assert (channel["channel"], channel["sent"], channel["failed"]) == ("pager", 1, 1)
    assert channel["outbox"] == {"pending": 0, "failed": 0, "dead": 1}
    assert channel["last_success"] is not None
    result = cli("notify", "outbox", "list", "--state-path", path)
    assert result.exit_code == 0, _output(result)
    assert "dead" in result.stdout and "first" in result.stdout
    assert "401 from https://hooks.example***" in result.stdout
    assert secret not in _output(result)
