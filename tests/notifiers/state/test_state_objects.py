"""NotifierState is one connection plus a repository per table; no partial classes."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import notifiers.pipeline
import notifiers.state
from notifiers import Notification, Severity
from notifiers.state import (
    Connection,
    MutesTable,
    NotifierState,
    OutboxState,
    OutboxTable,
    OwnersTable,
    StatsTable,
)


def test_the_state_is_one_connection_and_its_tables(tmp_path: Path) -> None:
    with NotifierState(tmp_path / "s.sqlite3", max_outbox=5) as state:
        assert isinstance(state.db, Connection)
        tables = [state.outbox, state.owners, state.mute_table, state.stats]
        assert [type(t) for t in tables] == [
            OutboxTable,
            OwnersTable,
            MutesTable,
            StatsTable,
        ]
        assert all(t.db is state.db for t in tables)  # one connection
        # The state's methods are its tables' methods.
        note = Notification("t", "b", Severity.ERROR)
        ids = state.outbox.put(note, ["tg"], owner="me")
        assert [r.id for r in state.rows()] == [ids["tg"]]
        state.owners.register("me")
        assert state.claim("you", ["tg"]) == {}  # its owner is alive
        assert state.mark(ids["tg"], OutboxState.FAILED)
        assert state.outbox.counts() == {"tg": {"failed": 1}}
        before = state.version()
        state.mute("agent", "w-*", duration=60)
        assert state.version() != before  # a notable write, seen by version()
        assert [m.agent for m in state.mute_table.mutes()] == ["w-*"]
        state.stats.save_stats({"tg": {"sent": 2}}, heartbeat="me")
        assert state.load_stats()["tg"]["sent"] == 2
        assert state.max_outbox == 5 and state.outbox.max_outbox == 5
    with pytest.raises(ValueError, match="max_outbox"):
        NotifierState(tmp_path / "t.sqlite3", max_outbox=0)


@pytest.mark.parametrize("package", [notifiers.pipeline, notifiers.state])
def test_no_class_is_built_from_partial_classes(package: object) -> None:
    """No class whose MRO holds more than two classes of this project."""
    for name in package.__all__:  # type: ignore[attr-defined]
        obj = getattr(package, name)
        if inspect.isclass(obj):
            own = [
                c.__qualname__
                for c in obj.__mro__
                if c.__module__.startswith(("notifiers", "pyorchestrate"))
            ]
            assert len(own) <= 2, (name, own)
