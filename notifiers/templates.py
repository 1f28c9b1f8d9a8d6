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
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .base import Notification, Severity, TextFormat

__all__ = [
    "ALERT_TAIL_CHARS",
    "ALERT_TAIL_LINES",
    "CODE_FENCE",
    "DEFAULT_TEMPLATES",
    "MAX_FRAMES",
    "PIPELINE_TEMPLATES",
    "TRUNCATION_MARKER",
    "Template",
    "alert_tail",
    "code_block",
    "escape",
    "format_duration",
    "format_text",
    "plain_text",
    "render",
    "render_alert",
    "traceback_frames",
]

TRUNCATION_MARKER = "… (truncated)"

CODE_FENCE = "```"
"""A body line of just this opens or closes a code block (a traceback, an output
tail): Telegram shows it as ``<pre>``, MarkdownV2 and Slack as a fenced block, plain
text without the fence lines."""

MAX_FRAMES = 12
"""At most this many of the last traceback frames go in an alert (a channel's length
limit may drop more, oldest first, whole frames)."""

_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+), in (?P<func>.*)$')


@dataclass(frozen=True, slots=True)
class Template:
    """Title and body as ``str.format`` strings over the event's fields.

    Fields: ``agent``, ``event``, ``error``, ``host``, ``time``, ``date``,
    ``generation``, ``pid``, ``exit_code``, ``signal``, ``reason``, ``status``,
    ``orchestrator``, ``attempt``, ``delay``, ``restarts``, ``timeout``, ``due`` (a
    missed run's due time), ``runtime`` (a late run's), ``action``, ``actor``,
    ``source``, ``result`` (an operator's action), ``node`` (a Ray agent's node)
    (missing ones render as ``-``); ``error_type``, ``end`` (``exit code 1``,
    ``signal SIGKILL``, ``on Ray node 10.0.0.7``, ``no exit code (a thread)`` or
    ``exit code unknown``), ``traceback`` (the
    last frames, ``file:line in function`` and the source line, as a code block),
    ``output_tail`` (the last lines a process agent wrote, at most
    :data:`ALERT_TAIL_LINES` lines and :data:`ALERT_TAIL_CHARS` characters, as a code
    block)
    and ``status_command`` (``pyorchestrate status AGENT --name ORCHESTRATOR``) render
    as empty text when there is nothing to show.
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
        "{error}\n\nreason: {reason}, {end}, start #{generation}\n"
        "{traceback}\n{output_tail}\nmore: {status_command}\n"
        "orchestrator {orchestrator}, host {host}, {date} {time}",
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
    "agent_missed": Template(
        "⌛ {agent} missed its run due at {due}",
        "{error}\n\nreason: {reason}\nmore: {status_command}\n"
        "orchestrator {orchestrator}, host {host}, {date} {time}",
        Severity.ERROR,
    ),
    "agent_late": Template(
        "🐢 {agent} still running after {timeout} s",
        "{error}\npid {pid}, start #{generation}\nhost {host}, {date} {time}",
        Severity.WARNING,
    ),
    "operator_action": Template(
        "👤 {action} {agent} by {actor} ({source})",
        "{result}\norchestrator {orchestrator}, host {host}, {date} {time}",
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


def traceback_frames(text: str, limit: int = MAX_FRAMES) -> list[str]:
    """The last ``limit`` frames of a Python traceback, each ``file:line in function``
    followed (on an indented line) by its source line when the traceback has one."""
    frames: list[str] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _FRAME.match(line)
        if match is None:
            continue
        frame = f"{match['file']}:{match['line']} in {match['func'].strip()}"
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if following.startswith("    ") and not _FRAME.match(following):
            source = following.strip()
            if source and set(source) - set("^~ "):
                frame += f"\n    {source}"
        frames.append(frame)
    return frames[-limit:] if limit > 0 else []


ALERT_TAIL_LINES = 20
"""Lines of an agent's output tail an alert shows (its newest)."""

ALERT_TAIL_CHARS = 2_000
"""Characters of an agent's output tail an alert shows (its newest lines)."""


def alert_tail(tail: str) -> str:
    """The newest :data:`ALERT_TAIL_LINES` lines of ``tail`` within
    :data:`ALERT_TAIL_CHARS` characters, after a line saying how many were left out.

    The orchestrator keeps a longer tail (200 lines, 32 KiB by default) for
    ``status`` and ``logs``; an alert is read on a phone, and a channel that cuts a
    long message would drop the traceback's frames before the tail's old lines.
    """
    lines = tail.strip("\n").split("\n")
    kept: list[str] = []
    used = 0
    for line in reversed(lines[-ALERT_TAIL_LINES:]):
        if kept and used + len(line) + 1 > ALERT_TAIL_CHARS:
            break
        if not kept and len(line) > ALERT_TAIL_CHARS:
            line = "…" + line[-(ALERT_TAIL_CHARS - 1) :]
        kept.append(line)
        used += len(line) + 1
    left_out = len(lines) - len(kept)
    if left_out:
        kept.append(f"… {left_out} earlier line(s) not shown")
    return "\n".join(reversed(kept))


def code_block(text: str) -> str:
    """``text`` between :data:`CODE_FENCE` lines ("" for blank text)."""
    text = text.strip("\n")
    if not text.strip():
        return ""
    return f"{CODE_FENCE}\n{text}\n{CODE_FENCE}"


def _end(kwargs: Mapping[str, Any]) -> str:
    signal, code = kwargs.get("signal"), kwargs.get("exit_code")
    if signal:
        return f"signal {signal}"
    if code is not None:
        return f"exit code {code}"
    if kwargs.get("node"):  # a Ray agent: where it ran says more than a code
        return f"on Ray node {kwargs['node']}"
    if kwargs.get("pid") in (None, os.getpid()):  # a thread agent: our own pid
        return "no exit code (a thread)"
    return "exit code unknown"


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
        host=kwargs.get("host") or Notification.__dataclass_fields__["host"].default,
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
        error_type=kwargs.get("error_type"),
        due=kwargs.get("due"),
        runtime=kwargs.get("runtime"),
        action=kwargs.get("action"),
        actor=kwargs.get("actor") or "someone",
        source=kwargs.get("source"),
        result=kwargs.get("result"),
        node=kwargs.get("node"),
    )
    for key, value in list(fields.items()):
        if value is None:
            fields[key] = "-"
    if isinstance(fields["time"], str) and "." in fields["time"]:
        fields["time"] = fields["time"].split(".", 1)[0]
    trace = kwargs.get("traceback")
    frames = traceback_frames(trace) if isinstance(trace, str) else []
    fields["traceback"] = code_block("\n".join(frames))
    tail = kwargs.get("output_tail")
    fields["output_tail"] = (
        code_block(alert_tail(tail)) if isinstance(tail, str) else ""
    )
    fields["end"] = _end(kwargs)
    command = f"pyorchestrate status {fields['agent']}"
    if kwargs.get("orchestrator"):
        command += f" --name {kwargs['orchestrator']}"
    fields["status_command"] = command
    return fields


_ONLY_FIELD = re.compile(r"\{\w+\}")


def _format_body(body: str, fields: Mapping[str, Any]) -> str:
    """``body`` over ``fields``; a line of a single field that renders empty (no
    traceback, no output tail) is left out rather than left blank."""
    lines = []
    for line in body.split("\n"):
        text = line.format_map(fields)
        if text or not _ONLY_FIELD.fullmatch(line.strip()):
            lines.append(text)
    return "\n".join(lines)


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
    body = _format_body(template.body, fields)
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


def _segments(body: str) -> list[tuple[bool, str]]:
    """``body`` as (is code, text) pieces split at :data:`CODE_FENCE` lines (an
    unclosed block runs to the end)."""
    pieces: list[tuple[bool, str]] = []
    code, lines = False, list[str]()
    for line in body.split("\n"):
        if line.strip() == CODE_FENCE:
            pieces.append((code, "\n".join(lines)))
            code, lines = not code, []
        else:
            lines.append(line)
    pieces.append((code, "\n".join(lines)))
    return [(is_code, text) for is_code, text in pieces if text]


def _escape_body(body: str, text_format: TextFormat) -> str:
    parts = []
    for is_code, text in _segments(body):
        if not is_code:
            parts.append(escape(text, text_format))
        elif text_format is TextFormat.HTML:
            parts.append(f"<pre>{escape(text, text_format)}</pre>")
        elif text_format is TextFormat.MARKDOWN_V2:
            code = text.replace("\\", "\\\\").replace("`", "\\`")
            parts.append(f"{CODE_FENCE}\n{code}\n{CODE_FENCE}")
        else:
            parts.append(text)
    return "\n".join(parts)


def plain_text(body: str) -> str:
    """``body`` without its :data:`CODE_FENCE` lines (plain-text channels)."""
    return "\n".join(text for _, text in _segments(body))


def _compose(title: str, body: str, text_format: TextFormat) -> str:
    if text_format is TextFormat.HTML:
        head = f"<b>{escape(title, text_format)}</b>"
    elif text_format is TextFormat.MARKDOWN_V2:
        head = f"*{escape(title, text_format)}*"
    else:
        head = title
    return f"{head}\n{_escape_body(body, text_format)}" if body else head


def _units(code: str) -> list[str]:
    """A code block's frames: a line that is not indented, with the indented lines
    after it (a traceback frame and its source line; one line of output)."""
    units: list[str] = []
    for line in code.split("\n"):
        if units and line.startswith((" ", "\t")):
            units[-1] += "\n" + line
        else:
            units.append(line)
    return units


def _cut_frames(body: str, fits: Callable[[str], bool]) -> str | None:
    """``body`` with the oldest frames of its code blocks dropped (whole frames, the
    first block first) until ``fits``; ``None`` if dropping all of them is not
    enough."""
    lines = body.split("\n")
    block = 0
    while True:
        fences = [i for i, line in enumerate(lines) if line.strip() == CODE_FENCE]
        if 2 * block + 1 >= len(fences):
            return None
        opening, closing = fences[2 * block], fences[2 * block + 1]
        units = _units("\n".join(lines[opening + 1 : closing]))
        head, tail = lines[: opening + 1], lines[closing:]

        def shortened(
            dropped: int,
            units: list[str] = units,
            head: list[str] = head,
            tail: list[str] = tail,
        ) -> str:
            kept = units[dropped:]
            if dropped:
                kept = [f"… {dropped} earlier line(s) cut", *kept]
            return "\n".join([*head, *kept, *tail])

        if not fits(shortened(len(units))):
            lines = shortened(len(units)).split("\n")
            block += 1
            continue
        low, high = 0, len(units)  # the smallest count that fits
        while low < high:
            middle = (low + high) // 2
            if fits(shortened(middle)):
                high = middle
            else:
                low = middle + 1
        return shortened(low)


def format_text(
    notification: Notification,
    text_format: TextFormat,
    max_length: int | None = None,
    *,
    compose: Callable[[str, str, TextFormat], str] = _compose,
) -> str:
    """Title and body escaped for ``text_format``, cut to fit ``max_length`` characters.

    When it is too long, the oldest frames of its code blocks (a traceback, an output
    tail) are dropped first, whole frames, replaced by a line saying how many were
    cut. If that is not enough, whole lines are dropped from the end of the body (a
    single over-long line is cut within the line) and :data:`TRUNCATION_MARKER` is
    appended.
    Cutting happens on the plain text, before escaping, so no tag or entity is split.
    """
    title, body = notification.title, notification.body
    text = compose(title, body, text_format)
    if max_length is None or len(text) <= max_length:
        return text
    if CODE_FENCE in body:
        cut = _cut_frames(
            body, lambda b: len(compose(title, b, text_format)) <= max_length
        )
        if cut is not None:
            return compose(title, cut, text_format)
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
