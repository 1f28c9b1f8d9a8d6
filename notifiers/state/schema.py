"""Where the state file lives, and the tables in it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DEFAULT_STATE_FILE",
    "SCHEMA",
    "SCHEMA_VERSION",
    "default_state_path",
]

SCHEMA_VERSION = 2
"""``PRAGMA user_version`` of the files this package writes (2: the chat-ops tables;
a version-1 file gets them when it is opened, and keeps everything else)."""

DEFAULT_STATE_FILE = "notify.sqlite3"


def default_state_path() -> Path:
    """``$XDG_STATE_HOME/pyorchestrate/notify.sqlite3`` (``~/.local/state/…`` if unset)."""
    base = Path(os.environ.get("XDG_STATE_HOME") or "relative")
    root = base if base.is_absolute() else Path.home() / ".local" / "state"
    return root / "pyorchestrate" / DEFAULT_STATE_FILE


SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL,
    channel TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'failed', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    error_class TEXT,
    last_error TEXT,
    owner TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (uid, channel)
);
CREATE INDEX IF NOT EXISTS outbox_by_channel ON outbox (channel, state, id);
CREATE INDEX IF NOT EXISTS outbox_by_state ON outbox (state, id);
CREATE TABLE IF NOT EXISTS mutes (
    kind TEXT NOT NULL CHECK (kind IN ('agent', 'event', 'channel')),
    value TEXT NOT NULL,
    until REAL,
    created REAL NOT NULL,
    reason TEXT,
    PRIMARY KEY (kind, value)
);
CREATE TABLE IF NOT EXISTS channel_stats (
    channel TEXT PRIMARY KEY,
    stats TEXT NOT NULL,
    last_success REAL,
    last_error TEXT,
    host TEXT,
    pid INTEGER,
    saved_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS owners (
    owner TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    proc_start TEXT,
    started REAL NOT NULL,
    heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chat_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL,
    channel TEXT NOT NULL,
    agent TEXT,
    event TEXT,
    title TEXT NOT NULL,
    error TEXT,
    chat TEXT,
    message_id INTEGER,
    text TEXT,
    notes TEXT NOT NULL DEFAULT '',
    used TEXT NOT NULL DEFAULT '',
    acked_by TEXT,
    acked_at REAL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_alerts_by_chat ON chat_alerts (chat, id);
CREATE INDEX IF NOT EXISTS chat_alerts_by_uid ON chat_alerts (uid, channel);
CREATE TABLE IF NOT EXISTS escalations (
    alert INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    due REAL NOT NULL,
    timeout REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'acked', 'fired')),
    payload TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS escalations_by_due ON escalations (state, due);
"""
