"""Every notifier setting the README and the docs show is accepted.

The keys are read out of the Markdown itself, so a page cannot promise a setting the
code refuses:

* README.md's settings table: the environment column (``TELEGRAM__TOKEN``,
  ``TELEGRAM__RATE_LIMITS='["20/min"]'``) and the TOML column (``[telegram]``
  ``token``, ``fallback = "email"``, ``rate_limits`` *in a section*);
* every ``PYORCHESTRATE_NOTIFY_*`` name (and value) in README.md and docs/**.md;
* TOML in docs/**.md and README.md: ```toml blocks, and inline snippets such as
  ``rate_limits = ["20/min"]`` or ``[rules] recovery = true`` (written ``key = value``,
  with spaces: ``key=value`` is a Python argument in these pages).

Each key is loaded through the real sources: the environment variable is set, or a
TOML file is written and read with ``NotifierSettings.from_toml``, beside a valid
minimal section, so only the key under test can be at fault. A documented value must
load without any error at that key (placeholders such as ``123456:ABC...`` are only
checked for the key); a key shown without a value must not be an unknown setting.
Every environment key must also be accepted as a TOML key ("the same keys go in a
TOML file").
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from notifiers import NotifierConfigError
from notifiers.settings import CONFIG_FILE_ENV, ENV_PREFIX, NotifierSettings

ROOT = Path(__file__).resolve().parents[2]
# Pages about fleet files: their TOML is a fleet's ([agents.*], [orchestrator],
# ${VAR}, *_file), whose [notify] table is loaded by tests/fleet (the example file
# runs there with its alerts on), not a notifier settings file.
FLEET_PAGES = {
    "docs/guides/fleet.md",
    "docs/guides/systemd.md",
    "docs/reference/fleet.md",
}
PAGES = [
    ROOT / "README.md",
    *sorted(
        page
        for page in (ROOT / "docs").rglob("*.md")
        if str(page.relative_to(ROOT)) not in FLEET_PAGES
    ),
]
CHANNELS = ("telegram", "email", "slack", "webhook", "apprise")
# A valid minimal section of each channel, so that only the key under test can fail.
BASE: dict[str, dict[str, Any]] = {
    "telegram": {"token": "123456:DOCSchecktoken_abc", "chat_id": -1001234567},
    "email": {
        "host": "127.0.0.1",
        "sender": "alerts@example.com",
        "recipients": ["ops@example.com"],
    },
    "slack": {"webhook_url": "https://hooks.slack.com/services/T0/B0/docs"},
    "webhook": {"url": "json://127.0.0.1:9/docs-check"},
    "apprise": {"urls": ["json://127.0.0.1:9/docs-check"]},
}
NO_VALUE: Any = "(no value)"
"""Shown as a key only (or with a placeholder value): it must be a known setting."""
TABLE: Any = "(a table)"
"""Shown as a TOML table header: the table must be a known setting."""


@dataclass(frozen=True)
class Shown:
    """One setting as a page shows it."""

    where: str  # "README.md:229"
    source: str  # "env" or "toml"
    path: tuple[str, ...]  # ("telegram", "rate_limits")
    value: object = NO_VALUE
    anywhere: bool = False  # shown without its table: top level, or every section

    @property
    def valued(self) -> bool:
        """Whether the page shows a real value (which must then load)."""
        return self.value not in (NO_VALUE, TABLE)

    @property
    def id(self) -> str:
        if self.source == "env":
            key = "__".join(self.path).upper()
        else:
            key = ".".join(self.path)
            key = f"[{key}]" if self.value == TABLE else key
        shown = f"={self.value!r}" if self.valued else ""
        anywhere = " (top level or a section)" if self.anywhere else ""
        return f"{self.where} {self.source} {key}{shown}{anywhere}"


# ---------------------------------------------------------------- reading the pages

_SPAN = re.compile(r"`([^`\n]+)`")
_ENV_KEY = re.compile(
    r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*(?:__[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)*"
)
_ENV_NAME = re.compile(
    re.escape(ENV_PREFIX)
    + r"(?P<key>[A-Z0-9_]*)(?P<wild>[*…]|\.\.\.)?"
    + r"""(?:=(?P<value>'[^']*'|"[^"]*"|[^\s`]+))?"""
)
_TOML_FENCE = re.compile(r"^[ \t]*```toml[^\n]*\n(?P<body>.*?)^[ \t]*```", re.S | re.M)
_TABLE = re.compile(r"\[([a-z_][a-z0-9_.]*)\]")
_IDENT = re.compile(r"[a-z_][a-z0-9_]*")
# TOML as these pages write it inline: `key = value`, spaces around "=" (`key=value`
# is a Python argument there, e.g. `reason="watchdog"`).
_ASSIGNMENT = re.compile(r"[a-z_][a-z0-9_.]* = \S")


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _placeholder(value: str) -> bool:
    return "..." in value or "…" in value


def _env_value(raw: str | None) -> object:
    if raw is None:
        return NO_VALUE
    (value,) = shlex.split(raw)
    return NO_VALUE if _placeholder(value) else value


def _env_path(key: str) -> tuple[str, ...]:
    return tuple(part.lower() for part in key.split("__"))


def _settings_table(text: str) -> Iterator[tuple[int, str, str]]:
    """(line, environment cell, TOML cell) of each row of README's settings table."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("|") and f"prefix `{ENV_PREFIX}`" in line:
            for offset, row in enumerate(lines[number + 2 :], start=number + 3):
                if not row.startswith("|"):
                    return
                cells = [cell.strip() for cell in row.strip("|").split("|")]
                yield offset, cells[1], cells[2]
    raise AssertionError("README.md has no settings table (environment | TOML)")


def _toml_spans(cell: str, where: str) -> Iterator[Shown]:
    """The keys of a TOML cell or of inline TOML in prose."""
    table: tuple[str, ...] = ()
    for span in _SPAN.findall(cell):
        span = span.strip()
        header = _TABLE.fullmatch(span)
        if header:
            table = tuple(header[1].split("."))
            yield Shown(where, "toml", table, TABLE)
            continue
        if _IDENT.fullmatch(span):
            yield Shown(where, "toml", (*table, span), anywhere=not table)
            continue
        yield from _inline_toml(span, where, table)


def _inline_toml(span: str, where: str, table: tuple[str, ...] = ()) -> Iterator[Shown]:
    """``key = value`` (optionally after ``[table] ``) that TOML can read."""
    header = re.match(r"\[([a-z_][a-z0-9_.]*)\]\s+(.*)", span)
    if header:
        table, span = tuple(header[1].split(".")), header[2]
    if not _ASSIGNMENT.match(span):
        return  # prose, or Python: `reason="watchdog"`, `quiet_hours={...}`
    try:
        parsed = tomllib.loads(span)
    except tomllib.TOMLDecodeError:
        return  # e.g. `alerts = attach_from_settings(orchestrator)`
    for key, value in _leaves(parsed):
        shown = NO_VALUE if isinstance(value, str) and _placeholder(value) else value
        yield Shown(where, "toml", (*table, *key), shown, anywhere=not table)


def _leaves(
    data: Mapping[str, Any], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    for key, value in data.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def documented() -> list[Shown]:
    found: list[Shown] = []
    readme = (ROOT / "README.md").read_text("utf-8")
    for number, env, toml in _settings_table(readme):
        where = f"README.md:{number}"
        for span in _SPAN.findall(env):
            key, _, raw = span.partition("=")
            if _ENV_KEY.fullmatch(key):
                value = _env_value(raw or None)
                found.append(Shown(where, "env", _env_path(key), value))
        found.extend(_toml_spans(toml, where))
    for page in PAGES:
        text = page.read_text("utf-8")
        name = str(page.relative_to(ROOT))
        for match in _ENV_NAME.finditer(text):
            key = match["key"].rstrip("_")
            if not key or ENV_PREFIX + key == CONFIG_FILE_ENV:
                continue  # the prefix alone, "…", or the file's own variable
            where = f"{name}:{_line(text, match.start())}"
            value = NO_VALUE if match["wild"] else _env_value(match["value"])
            found.append(Shown(where, "env", _env_path(key), value))
        for match in _TOML_FENCE.finditer(text):
            where = f"{name}:{_line(text, match.start())}"
            for key, value in _leaves(tomllib.loads(match["body"])):
                found.append(Shown(where, "toml", key, value))
        for match in _SPAN.finditer(text):
            where = f"{name}:{_line(text, match.start())}"
            found.extend(_inline_toml(match[1].strip(), where))
    # "The same keys go in a TOML file": every environment key as a TOML key too.
    found += [
        Shown(s.where, "toml", s.path, _as_toml(s.value))
        for s in found
        if s.source == "env"
    ]
    return list({(s.id, s.anywhere): s for s in found}.values())


def _as_toml(value: object) -> object:
    """An environment value as TOML holds it (lists and numbers are JSON there)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


DOCUMENTED = documented()


# ---------------------------------------------------------------- loading them


def _nest(path: tuple[str, ...], value: object) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if path[0] in BASE:
        data[path[0]] = dict(BASE[path[0]])
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
    if value == TABLE:
        node.setdefault(path[-1], {})
    else:
        node[path[-1]] = value
    return data


def _toml(data: Mapping[str, Any], table: tuple[str, ...] = ()) -> str:
    """A tiny TOML writer: scalars, lists of scalars and tables (enough here)."""
    scalars = [(k, v) for k, v in data.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in data.items() if isinstance(v, dict)]
    out = [f"[{'.'.join(table)}]"] if table else []
    out += [f"{key} = {json.dumps(value)}" for key, value in scalars]
    for key, value in tables:
        out.append(_toml(value, (*table, key)))
    return "\n".join(out) + "\n"


def load(
    shown: Shown, path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, tmp: Path
) -> list[tuple[str, str]]:
    """The errors of loading ``path`` (with the shown value) through its source."""
    value = shown.value if shown.valued else 1 if shown.value == NO_VALUE else TABLE
    monkeypatch.setenv(ENV_PREFIX + "STATE_PATH", "none")
    if shown.source == "env":
        if path[0] in BASE:
            for key, base in BASE[path[0]].items():
                text = base if isinstance(base, str) else json.dumps(base)
                monkeypatch.setenv(f"{ENV_PREFIX}{path[0]}__{key}".upper(), text)
        monkeypatch.setenv(ENV_PREFIX + "__".join(path).upper(), str(value))
        file = None
    else:
        file = tmp / "notify.toml"
        file.write_text(_toml(_nest(path, value)), "utf-8")
    try:
        NotifierSettings() if file is None else NotifierSettings.from_toml(file)
    except NotifierConfigError as exc:
        return exc.errors
    return []


def refused(
    errors: list[tuple[str, str]], path: tuple[str, ...], valued: bool
) -> list[tuple[str, str]]:
    """The errors that say the setting at ``path`` is refused."""
    dotted = ".".join(path)
    env = ENV_PREFIX + "__".join(path).upper()
    mine = [
        (loc, msg)
        for loc, msg in errors
        if loc in (dotted, env) or loc.startswith((dotted + ".", dotted + "["))
    ]
    unknown = [(loc, msg) for loc, msg in errors if msg.startswith("unknown setting")]
    return list(dict.fromkeys([*unknown, *(mine if valued else [])]))


# ---------------------------------------------------------------- the tests


@pytest.fixture
def isolated(notify_env: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    notify_env.chdir(tmp_path)
    return notify_env


def test_the_pages_show_settings() -> None:
    # The reader must keep finding them: the table, the examples, inline TOML.
    ids = {s.id for s in DOCUMENTED}
    assert len(DOCUMENTED) >= 40
    assert any("env TELEGRAM__RATE_LIMITS='[\"20/min\"]'" in i for i in ids)
    assert any(s.path == ("rate_limits",) and s.anywhere for s in DOCUMENTED)
    assert any(s.path == ("rules", "recovery") for s in DOCUMENTED)
    assert any(
        s.source == "toml" and s.path == ("telegram", "token") for s in DOCUMENTED
    )


@pytest.mark.parametrize("shown", DOCUMENTED, ids=[s.id for s in DOCUMENTED])
def test_a_documented_setting_is_accepted(
    shown: Shown, isolated: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    valued = shown.valued
    if shown.anywhere:
        # A key shown without its table: at the top level, or in every channel section.
        top = refused(load(shown, shown.path, isolated, tmp_path), shown.path, valued)
        if not top:
            return
        problems = {}
        for channel in CHANNELS:
            path = (channel, *shown.path)
            with pytest.MonkeyPatch.context() as patch:
                errors = refused(load(shown, path, patch, tmp_path), path, valued)
            if errors:
                problems[channel] = errors
        assert not problems, (
            f"{shown.where}: {shown.path[-1]!r} refused: {top} / {problems}"
        )
        return
    errors = refused(load(shown, shown.path, isolated, tmp_path), shown.path, valued)
    assert not errors, f"{shown.where} shows a setting that is refused: {errors}"
