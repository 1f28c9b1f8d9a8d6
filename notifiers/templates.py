"""Turn orchestrator events into notifications, and notifications into channel text.

:func:`render` builds a :class:`Notification` from a callback's keywords with the
default template of its event (override any of them with ``templates=``).
:func:`format_text` escapes title and body for a channel's format (plain, HTML,
MarkdownV2) and fits them in its length limit, cutting the plain text at a line
boundary and adding a visible marker, so the cut never falls inside a tag or an
entity.
"""

from __future__ import annotations

import datetime as _dt
import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .base import Notification, Severity, TextFormat

__all__ = [
    "DEFAULT_TEMPLATES",
    "PIPELINE_TEMPLATES",
    "TRUNCATION_MARKER",
    "Template",
    "escape",
    "format_duration",
    "format_text",
    "render",
    "render_alert",
]

TRUNCATION_MARKER = "… (truncated)"


@dataclass(frozen=True, slots=True)
class Template:
    """Title and body as ``str.format`` strings over the event's fields.

    Fields: ``agent``, ``event``, ``error``, ``host``, ``time``, ``date``,
    ``generation``, ``pid``, ``exit_code``, ``signal``, ``reason``, ``status``,
    ``orchestrator``, ``attempt``, ``delay``, ``restarts``, ``timeout`` (missing ones
    render as ``-``).
    """

    title: str
    body: str
    severity: Severity = Severity.INFO


DEFAULT_TEMPLATES: dict[str, Template] = {
    "agent_registered": Template("{agent} registered", "on {host} at {time}"),
    "agent_started": Template(
        "▶ {agent} started", "pid {pid}, start #{generation} on {host} at {time}"
    ),
    "agent_ready": Template("✔ {agent} ready", "pid {pid} on {host} at {time}"),
    "agent_terminated": Template(
        "■ {agent} terminated ({status})",
        "exit code {exit_code} on {host} at {time}",
    ),
    "agent_error": Template(
        "✖ {agent} failed",
        "{error}\n\nreason: {reason}, exit code {exit_code}, start #{generation}\n"
        "host {host}, {date} {time}",
        Severity.ERROR,
    ),
    "agent_heartbeat": Template("{agent} heartbeat", "at {time}", Severity.DEBUG),
    "agent_restarting": Template(
        "↻ {agent} restarting (attempt {attempt})",
        "{reason}; starts again in {delay} s\nhost {host}, {date} {time}",
        Severity.WARNING,
    ),
    "agent_fatal": Template(
        "☠ {agent} is FATAL after {attempt} restarts",
        "{error}\n\nNo more automatic restarts until an operator starts it "
        "(pyorchestrate start {agent}).\nhost {host}, {date} {time}",
        Severity.CRITICAL,
    ),
    "agent_watchdog_timeout": Template(
        "⏱ {agent} hung: no heartbeat for {timeout} s",
        "pid {pid}, start #{generation}; the watchdog stops it and its restart "
        "policy applies\nhost {host}, {date} {time}",
        Severity.ERROR,
    ),
}
"""The default template of each event (by its value)."""

PIPELINE_TEMPLATES: dict[str, Template] = {
    "alert_group": Template(
        "{agent}: {event} ×{count} in {span}",  # noqa: RUF001
        "{count} × {event} from {first} to {last_time}{first_sent}\nlast: {last}\n"  # noqa: RUF001
        "host {host}",
        Severity.WARNING,
    ),
    "agent_flapping": Template(
        "⚠ {agent} is flapping: {count} errors in {span}",
        "last: {last}\nIts further alerts are held back until it has run "
        "{stable_after} without an error, or an operator starts it; what is held "
        "back is counted and {reports}.\nhost {host}",
        Severity.ERROR,
    ),
    "agent_recovered": Template(
        "✔ {agent} recovered after {duration}",
        "failing since {since}: {errors} error(s), {restarts} restart(s); up again "
        "at {up_at}, {outcome}\nhost {host}",
        Severity.INFO,
    ),
    "agent_held_back": Template(
        "⏸ {agent}: {count} alerts held back, {outcome}",
        "{detail}\nlast: {last}\nhost {host}",
        Severity.WARNING,
    ),
    "alerts_digest": Template(
        "Quiet hours digest: {count} alerts held",
        "{lines}",
        Severity.WARNING,
    ),
    "digest_line": Template(
        "",
        "{first}–{last_time} {agent} {event} ×{count} (last: {last})",  # noqa: RUF001
    ),
    "note_identical": Template("", "(+{count} identical suppressed since {since})"),
    "note_suppressed": Template(
        "",
        "(+{count} × {event} suppressed since {since}; last: {last})",  # noqa: RUF001
    ),
    "note_muted": Template("", "(+{count} alerts muted since {since})"),
    "note_quiet": Template(
        "", "(+{count} alerts held back while {agent} was {state}, since {since})"
    ),
}
"""The texts the alert pipeline (:mod:`notifiers.pipeline`) writes itself.

Override any of them through the same ``templates=`` mapping as the event templates.
``alert_group`` is a group's summary (``count``, ``span``, ``first``, ``last_time``,
``last``, ``first_sent``, ``window``); ``agent_flapping`` (``count``, ``span``, ``last``,
``stable_after``, ``reports``), ``agent_recovered`` (``duration``, ``since``, ``up_at``,
``errors``, ``restarts``, ``stable_after``, ``outcome``), ``agent_held_back`` (what a
flapping or FATAL agent's quiet held back: ``count``, the total of the notes it
carries, ``outcome`` such as "still flapping" or "alerting stopped", ``detail``,
``state``, ``last``) and ``alerts_digest`` (``count``, ``lines``, ``shown``,
``more``) are messages of their own. The ``note_*`` and ``digest_line`` templates
use only their body: a note is put on the first line of the next message sent for
the agent, a digest line lists one (agent, event) held during quiet hours. The severity of ``alert_group`` and
``alerts_digest`` is that of the worst alert they stand for, not the template's;
``agent_held_back`` is at least the template's, more if what it held was worse.
"""


class _Defaulting(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "-"


def _fields(kwargs: Mapping[str, Any]) -> _Defaulting:
    event = kwargs.get("event")
    event_name = getattr(event, "value", event)
    fields = _Defaulting(
        agent=kwargs.get("agent_name") or "-",
        event=event_name or "-",
        error=kwargs.get("error_message") or "",
        host=Notification.__dataclass_fields__["host"].default,
        time=kwargs.get("event_time") or _dt.datetime.now().time().isoformat("seconds"),
        date=kwargs.get("event_date") or _dt.date.today().isoformat(),
        generation=kwargs.get("generation_id"),
        pid=kwargs.get("pid"),
        exit_code=kwargs.get("exit_code"),
        signal=kwargs.get("signal"),
        reason=kwargs.get("reason"),
        status=kwargs.get("termination_status"),
        orchestrator=kwargs.get("orchestrator"),
        attempt=kwargs.get("attempt"),
        delay=kwargs.get("delay"),
        restarts=kwargs.get("restarts"),
        timeout=kwargs.get("timeout"),
    )
    for key, value in list(fields.items()):
        if value is None:
            fields[key] = "-"
    if isinstance(fields["time"], str) and "." in fields["time"]:
        fields["time"] = fields["time"].split(".", 1)[0]
    return fields


def render(
    kwargs: Mapping[str, Any],
    templates: Mapping[str, Template] | None = None,
) -> Notification:
    """A :class:`Notification` for an event, from the callback's keyword arguments."""
    fields = _fields(kwargs)
    event_name = str(fields["event"])
    template = (templates or {}).get(event_name) or DEFAULT_TEMPLATES.get(
        event_name, Template("{agent}: {event}", "{error}")
    )
    # str.format_map: the same result as string.Formatter().vformat, 5x faster (C).
    title = template.title.format_map(fields)
    body = template.body.format_map(fields)
    generation = kwargs.get("generation_id")
    return Notification(
        title=title,
        body=body.strip(),
        severity=template.severity,
        agent=kwargs.get("agent_name"),
        event=event_name,
        generation=generation if isinstance(generation, int) else None,
        error=kwargs.get("error_message"),
    )


def render_alert(
    kind: str,
    fields: Mapping[str, Any],
    templates: Mapping[str, Template] | None = None,
) -> tuple[str, str, Severity]:
    """Title, body and severity of one of :data:`PIPELINE_TEMPLATES` over ``fields``.

    Missing fields render as ``-``; ``templates`` overrides the defaults by name.
    """
    template = (templates or {}).get(kind) or PIPELINE_TEMPLATES[kind]
    values = _Defaulting({"host": Notification.__dataclass_fields__["host"].default})
    values.update((k, "-" if v is None else v) for k, v in fields.items())
    title = template.title.format_map(values)
    body = template.body.format_map(values)
    return title, body.strip(), template.severity


def format_duration(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``5 min``, ``2 h 5 min``: a duration for people."""
    seconds = max(0.0, seconds)
    if seconds < 10:
        text = f"{seconds:.1f}".removesuffix(".0")
        return f"{text} s"
    if seconds < 120:
        return f"{round(seconds)} s"
    if seconds < 7200:
        return f"{round(seconds / 60)} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


_MD_SPECIAL = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


def escape(text: str, text_format: TextFormat) -> str:
    """Escape ``text`` so it shows literally in ``text_format``."""
    if text_format is TextFormat.HTML:
        return html.escape(text, quote=False)
    if text_format is TextFormat.MARKDOWN_V2:
        return _MD_SPECIAL.sub(r"\\\1", text)
    return text


def _compose(title: str, body: str, text_format: TextFormat) -> str:
    if text_format is TextFormat.HTML:
        head = f"<b>{escape(title, text_format)}</b>"
    elif text_format is TextFormat.MARKDOWN_V2:
        head = f"*{escape(title, text_format)}*"
    else:
        head = title
    return f"{head}\n{escape(body, text_format)}" if body else head


def format_text(
    notification: Notification,
    text_format: TextFormat,
    max_length: int | None = None,
    *,
    compose: Callable[[str, str, TextFormat], str] = _compose,
) -> str:
    """Title and body escaped for ``text_format``, cut to fit ``max_length`` characters.

    When it is too long, whole lines are dropped from the end of the body (a single
    over-long line is cut within the line) and :data:`TRUNCATION_MARKER` is appended.
    Cutting happens on the plain text, before escaping, so no tag or entity is split.
    """
    title, body = notification.title, notification.body
    text = compose(title, body, text_format)
    if max_length is None or len(text) <= max_length:
        return text
    lines = body.splitlines()

    def fits(kept: list[str]) -> str | None:
        candidate = compose(title, "\n".join([*kept, TRUNCATION_MARKER]), text_format)
        return candidate if len(candidate) <= max_length else None

    # Escaping only lengthens text, so no more lines fit than fit unescaped: bound
    # the search by that, then binary-search the count (work stays near linear).
    high, used = 0, len(title) + len(TRUNCATION_MARKER)
    while high < len(lines) and used + len(lines[high]) + 1 <= max_length:
        used += len(lines[high]) + 1
        high += 1
    low = -1
    while low < high:
        middle = (low + high + 1) // 2
        if fits(lines[:middle]) is not None:
            low = middle
        else:
            high = middle - 1
    if low > 0:
        return fits(lines[:low]) or ""
    if low == 0 and lines:
        # Not even the first line fits whole: cut inside it (on the plain text, so
        # escaping cannot split an entity).
        first, lo, hi = lines[0], 0, len(lines[0])
        while lo < hi:
            middle = (lo + hi + 1) // 2
            if fits([first[:middle]]) is not None:
                lo = middle
            else:
                hi = middle - 1
        return fits([first[:lo]] if lo else []) or ""
    # Even the title with the marker is too long: cut the title itself.
    lo, hi = -1, len(title)
    while lo < hi:
        middle = (lo + hi + 1) // 2
        shortened = compose(title[:middle] + " " + TRUNCATION_MARKER, "", text_format)
        if len(shortened) <= max_length:
            lo = middle
        else:
            hi = middle - 1
    if lo >= 0:
        return compose(title[:lo] + " " + TRUNCATION_MARKER, "", text_format)
    # A tiny limit: as much of the escaped marker as fits, whole escapes only.
    out = ""
    for char in TRUNCATION_MARKER:
        piece = escape(char, text_format)
        if len(out) + len(piece) > max_length:
            break
        out += piece
    return out
