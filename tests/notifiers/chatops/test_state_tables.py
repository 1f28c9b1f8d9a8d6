"""The chat-ops tables of the state file: one secret per installation, an alert
sent again (an outbox replay) keeps its one escalation, an escalation fires once
even when two processes race for it, and a version-1 file gains the tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from notifiers import Notification, Severity
from notifiers.state import SCHEMA_VERSION, NotifierState


def test_the_secret_is_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "notify.sqlite3"
    with NotifierState(path) as first:
        secret = first.chatops.secret()
    with NotifierState(path) as second:
        assert second.chatops.secret() == secret
    assert len(secret) == 32
    with NotifierState(":memory:") as elsewhere:  # closed: 3.13 warns of a leak
        assert elsewhere.chatops.secret() != secret


def test_an_alert_sent_again_keeps_its_one_escalation(tmp_path: Path) -> None:
    alert = Notification("etl failed", "boom", Severity.ERROR, agent="etl")
    with NotifierState(tmp_path / "notify.sqlite3") as state:
        table = state.chatops
        first = table.add_alert(alert, "telegram", 42)
        table.escalate_later(
            first, alert, channel="telegram", target="email", timeout=60
        )
        again = table.add_alert(alert, "telegram", 42)  # the replay
        table.escalate_later(
            again, alert, channel="telegram", target="email", timeout=60
        )
        assert again == first
        assert len(table.due(["telegram"], now=float("inf"))) == 1


def test_an_escalation_fires_once_across_two_connections(tmp_path: Path) -> None:
    path = tmp_path / "notify.sqlite3"
    alert = Notification("etl failed", "boom", Severity.ERROR, agent="etl")
    with NotifierState(path) as one, NotifierState(path) as two:
        row = one.chatops.add_alert(alert, "telegram", 42)
        one.chatops.escalate_later(
            row, alert, channel="telegram", target="email", timeout=1
        )
        [seen_by_one] = one.chatops.due(["telegram"], now=float("inf"))
        [seen_by_two] = two.chatops.due(["telegram"], now=float("inf"))
        fired_one = one.chatops.fire(seen_by_one, alert, owner=None, outbox=True)
        fired_two = two.chatops.fire(seen_by_two, alert, owner=None, outbox=True)
        assert fired_one[0] is True and fired_one[1] is not None
        assert fired_two == (False, None)
        assert [r.channel for r in one.rows()] == ["email"]


def test_a_version_1_file_gains_the_chatops_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with NotifierState(path) as state:
        state.mute("agent", "etl")
    conn = sqlite3.connect(path)
    for table in ("secrets", "chat_alerts", "escalations"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with NotifierState(path) as state:
        assert [m.value for m in state.mutes()] == ["etl"]  # kept
        assert len(state.chatops.secret()) == 32
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    conn.close()


def test_prune_forgets_old_alerts_but_not_a_pending_escalation(tmp_path: Path) -> None:
    now = [1_000_000.0]
    with NotifierState(tmp_path / "notify.sqlite3", clock=lambda: now[0]) as state:
        table = state.chatops
        old = table.add_alert(Notification("a", "b", agent="x"), "telegram", 42)
        waiting = table.add_alert(Notification("c", "d", agent="y"), "telegram", 42)
        table.escalate_later(
            waiting,
            Notification("c", "d"),
            channel="telegram",
            target="email",
            timeout=9e9,
        )
        now[0] += 100
        fresh = table.add_alert(Notification("e", "f", agent="z"), "telegram", 42)
        assert table.prune(now[0] - 50) == 1
        assert table.alert(old) is None
        assert table.alert(waiting) is not None and table.alert(fresh) is not None


def test_an_alert_goes_out_without_buttons_when_the_state_file_fails(
    tmp_path: Path,
) -> None:
    from notifiers import Dispatcher, TelegramNotifier
    from notifiers.chatops import Access, ChatOps, Permission
    from notifiers.testing import FakeTelegramServer

    with FakeTelegramServer() as server:
        ops = ChatOps(Access(users={42: Permission.OPERATOR}))
        channel = TelegramNotifier("123:abc", 42, base_url=server.base_url, chatops=ops)
        dispatcher = Dispatcher(
            [channel], rate_limits=False, name="notifiers-test-nobtn"
        )
        try:
            ops.table.db.close()  # the chat-ops tables cannot be written any more
            dispatcher.submit(
                Notification("etl failed", "boom", Severity.ERROR, agent="etl")
            )
            [message] = server.wait_for(1)
        finally:
            dispatcher.close(timeout=5)
    assert message["text"].startswith("<b>etl failed</b>")
    assert "reply_markup" not in message


def test_the_mute_button_mutes_the_agent_named_not_a_glob() -> None:
    import glob

    from notifiers.state import Mute

    mute = Mute.of("agent", glob.escape("etl[1]*"))  # what the button stores
    assert mute.matches("etl[1]*")
    assert not mute.matches("etl1") and not mute.matches("etl[1]-other")
