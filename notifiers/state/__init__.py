"""The notifier's durable state: one SQLite file for the outbox, mutes and channel stats.

Standard library only (``sqlite3``), so ``pyorchestrate notify outbox|mute|status`` can
read and change it from another process without loading the channels.

**Outbox.** With a state, a dispatcher writes every (notification, channel) it accepts
*ahead* of delivery, as a ``pending`` row, and deletes the row once delivered. Retries
exhausted (or a retry-after beyond the cap) leave it ``failed``; a permanent error, or
a "maybe delivered" timeout, leaves it ``dead`` (kept for inspection, never replayed on
its own: :meth:`NotifierState.replay` does it on request). A dispatcher that starts
again replays the ``pending`` and ``failed`` rows of its channels first, in ``id``
order (the order they were accepted in), once each. The table is bounded by
``max_outbox``: beyond it the oldest rows go, ``dead`` first, then ``failed``, then
``pending``, and each one is counted (:meth:`NotifierState.evicted`).

**Ownership.** Each running dispatcher registers as an *owner* (host, pid, a random
token) with a heartbeat, and owns the rows it wrote or claimed. It only replays rows
that nobody owns, or whose owner is gone: closed (it releases its rows), dead (same
host, the pid no longer runs), or silent for ``stale_after`` seconds. So a second
process on the same file (a CLI ``notify test``) never sends another one's alerts.

**Identity.** Rows carry a ``uid`` (per notification, shared by its channels; a random
UUID given at :meth:`~NotifierState.put` time unless the notification has a ``uid`` of
its own) with ``UNIQUE(uid, channel)``: the same alert is never stored twice for a
channel. The notification itself is kept as JSON (every dataclass field but the
process-local ``id``) and rebuilt by :func:`notification_from_json`.

**Objects.** :class:`NotifierState` is one :class:`Connection` (the file opened,
migrated, one lock) and a repository per table, each owning its SQL:
:class:`OutboxTable` (``state.outbox``), :class:`OwnersTable` (``state.owners``),
:class:`MutesTable` (``state.mute_table``) and :class:`StatsTable` (``state.stats``);
``state.put(...)`` and the other methods below reach them from the state. One
:class:`Mute` model, shared with the alert rules, and one check, :func:`find_mute`.

**Threads and processes.** One :class:`NotifierState` holds one connection, opened with
``check_same_thread=False`` and guarded by a lock: it may be built on one thread and
used on another (a dispatcher builds it on the caller's thread and uses it only on its
own loop thread). Processes each open their own: the file is in WAL mode (readers never
block the writer), with a ``busy_timeout`` for writers, and ``synchronous=NORMAL``: a
committed row survives the process being killed (not necessarily a power cut; pass
``synchronous="FULL"`` for that, at an fsync per commit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyorchestrate._lazy import lazy_exports

if TYPE_CHECKING:
    from ._mute import Mute, MuteKind, find_mute
    from ._notifier_state import NotifierState
    from .chatops import ChatAlert, ChatOpsTable, Escalation
    from .connection import Connection
    from .mutes import MutesTable
    from .outbox import OutboxRow, OutboxState, OutboxTable
    from .owners import OwnersTable
    from .schema import DEFAULT_STATE_FILE, SCHEMA_VERSION, default_state_path
    from .serialize import (
        notification_from_json,
        notification_to_json,
        notification_uid,
    )
    from .stats import StatsTable

# Names load on first use: the alert rules take the Mute model alone, and open no
# file and load no SQLite code when there is no state file.
_LAZY: dict[str, str] = {
    "ChatAlert": ".chatops",
    "ChatOpsTable": ".chatops",
    "Escalation": ".chatops",
    "Connection": ".connection",
    "DEFAULT_STATE_FILE": ".schema",
    "Mute": "._mute",
    "MuteKind": "._mute",
    "MutesTable": ".mutes",
    "NotifierState": "._notifier_state",
    "OutboxRow": ".outbox",
    "OutboxState": ".outbox",
    "OutboxTable": ".outbox",
    "OwnersTable": ".owners",
    "SCHEMA_VERSION": ".schema",
    "StatsTable": ".stats",
    "default_state_path": ".schema",
    "find_mute": "._mute",
    "notification_from_json": ".serialize",
    "notification_to_json": ".serialize",
    "notification_uid": ".serialize",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "DEFAULT_STATE_FILE",
    "SCHEMA_VERSION",
    "ChatAlert",
    "ChatOpsTable",
    "Connection",
    "Escalation",
    "Mute",
    "MuteKind",
    "MutesTable",
    "NotifierState",
    "OutboxRow",
    "OutboxState",
    "OutboxTable",
    "OwnersTable",
    "StatsTable",
    "default_state_path",
    "find_mute",
    "notification_from_json",
    "notification_to_json",
    "notification_uid",
]
