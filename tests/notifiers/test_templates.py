"""Templates: rendering events into notifications, escaping, and cutting to a limit."""

from __future__ import annotations

import html
import random
import re

import pytest

from notifiers import Notification, Severity, TextFormat
from notifiers.templates import (
    ALERT_TAIL_CHARS,
    ALERT_TAIL_LINES,
    DEFAULT_TEMPLATES,
    TRUNCATION_MARKER,
    Template,
    alert_tail,
    escape,
    format_text,
    render,
)
from pyorchestrate import OrchestratorEvent

HOST = Notification("t", "b").host

FULL_KWARGS = {
    "agent_name": "worker-1",
    "error_message": "ValueError: bad input",
    "event_date": "2024-05-01",
    "event_time": "12:34:56.789012",
    "exit_code": 3,
    "generation_id": 7,
    "orchestrator": "main",
    "pid": 4242,
    "reason": "crashed",
    "termination_status": "error",
}


def kwargs_for(event: OrchestratorEvent | str, **extra: object) -> dict[str, object]:
    return {**FULL_KWARGS, "event": event, **extra}


# ------------------------------------------------------------------ render


class TestRender:
    @pytest.mark.parametrize(
        ("event", "title", "body", "severity"),
        [
            (
                OrchestratorEvent.AGENT_REGISTERED,
                "worker-1 registered",
                f"on {HOST} at 12:34:56",
                Severity.INFO,
            ),
            (
                OrchestratorEvent.AGENT_STARTED,
                "▶ worker-1 started",
                f"pid 4242, start #7 on {HOST} at 12:34:56",
                Severity.INFO,
            ),
            (
                OrchestratorEvent.AGENT_READY,
                "✔ worker-1 ready",
                f"pid 4242 on {HOST} at 12:34:56",
                Severity.INFO,
            ),
            (
                OrchestratorEvent.AGENT_TERMINATED,
                "■ worker-1 terminated (error)",
                f"exit code 3 on {HOST} at 12:34:56",
                Severity.INFO,
            ),
            (
                OrchestratorEvent.AGENT_ERROR,
                "✖ worker-1 failed",
                "ValueError: bad input\n\nreason: crashed, exit code 3, start #7\n"
                "more: pyorchestrate status worker-1 --name main\n"
                f"orchestrator main, host {HOST}, 2024-05-01 12:34:56",
                Severity.ERROR,
            ),
            (
                OrchestratorEvent.AGENT_HEARTBEAT,
                "worker-1 heartbeat",
                "at 12:34:56",
                Severity.DEBUG,
            ),
        ],
    )
    def test_default_template_per_event(
        self, event: OrchestratorEvent, title: str, body: str, severity: Severity
    ) -> None:
        notification = render(kwargs_for(event))
        assert notification.title == title
        assert notification.body == body
        assert notification.severity is severity
        assert notification.agent == "worker-1"
        assert notification.event == event.value
        assert notification.generation == 7
        assert notification.error == "ValueError: bad input"

    def test_every_event_has_a_default_template(self) -> None:
        assert {e.value for e in OrchestratorEvent} <= set(DEFAULT_TEMPLATES)

    def test_event_given_as_its_value(self) -> None:
        by_enum = render(kwargs_for(OrchestratorEvent.AGENT_STARTED))
        by_value = render(kwargs_for("agent_started"))
        assert (by_enum.title, by_enum.body) == (by_value.title, by_value.body)

    def test_override_one_event(self) -> None:
        templates = {
            "agent_started": Template(
                "{agent} is up (#{generation})", "pid={pid}", Severity.WARNING
            )
        }
        started = render(kwargs_for(OrchestratorEvent.AGENT_STARTED), templates)
        assert started.title == "worker-1 is up (#7)"
        assert started.body == "pid=4242"
        assert started.severity is Severity.WARNING
        # The other events keep their defaults.
        ready = render(kwargs_for(OrchestratorEvent.AGENT_READY), templates)
        assert ready.title == "✔ worker-1 ready"

    def test_missing_fields_render_as_dash(self) -> None:
        notification = render({"event": OrchestratorEvent.AGENT_STARTED})
        assert notification.title == "▶ - started"
        assert notification.body.startswith("pid -, start #- on ")
        assert notification.agent is None
        assert notification.generation is None
        assert notification.error is None

    def test_missing_fields_of_the_error_template(self) -> None:
        notification = render(
            {"event": OrchestratorEvent.AGENT_ERROR, "agent_name": "w"}
        )
        assert notification.title == "✖ w failed"
        assert "reason: -, no exit code (a thread), start #-" in notification.body

    def test_unknown_field_in_a_user_template_renders_as_dash(self) -> None:
        templates = {"agent_ready": Template("{agent} {nope}", "{also_unknown}!")}
        notification = render(kwargs_for(OrchestratorEvent.AGENT_READY), templates)
        assert notification.title == "worker-1 -"
        assert notification.body == "-!"

    def test_unknown_event_uses_a_generic_template(self) -> None:
        notification = render({"event": "custom_event", "agent_name": "w"})
        assert notification.title == "w: custom_event"
        assert notification.body == ""
        assert notification.event == "custom_event"

    def test_fields_outside_the_template_are_available(self) -> None:
        templates = {
            "agent_ready": Template("{orchestrator}/{event}", "{date} {status} {host}")
        }
        notification = render(kwargs_for(OrchestratorEvent.AGENT_READY), templates)
        assert notification.title == "main/agent_ready"
        assert notification.body == f"2024-05-01 error {HOST}"

    def test_time_loses_its_fraction(self) -> None:
        notification = render(
            kwargs_for(OrchestratorEvent.AGENT_HEARTBEAT, event_time="01:02:03.5")
        )
        assert notification.body == "at 01:02:03"

    def test_time_defaults_to_now(self) -> None:
        notification = render({"event": OrchestratorEvent.AGENT_HEARTBEAT})
        assert re.fullmatch(r"at \d\d:\d\d:\d\d", notification.body)

    def test_non_integer_generation_is_not_kept(self) -> None:
        notification = render(
            kwargs_for(OrchestratorEvent.AGENT_STARTED, generation_id="7")
        )
        assert notification.generation is None
        assert "start #7" in notification.body

    def test_braces_in_values_are_not_formatted_again(self) -> None:
        notification = render(
            kwargs_for(OrchestratorEvent.AGENT_ERROR, error_message="{pid} {0} {")
        )
        assert notification.body.startswith("{pid} {0} {\n")


# ------------------------------------------------------------------ escape

MD_SPECIAL = "_*[]()~`>#+-=|{}.!\\"


class TestEscape:
    def test_plain_is_untouched(self) -> None:
        text = "a & b < c > d *bold* _x_ \\"
        assert escape(text, TextFormat.PLAIN) == text

    def test_html(self) -> None:
        assert escape("a & b < c > d", TextFormat.HTML) == "a &amp; b &lt; c &gt; d"
        # Quotes need no escaping outside attributes (Telegram accepts them as they are).
        assert escape("\"q\" 'q'", TextFormat.HTML) == "\"q\" 'q'"
        assert escape("&amp;", TextFormat.HTML) == "&amp;amp;"

    @pytest.mark.parametrize("char", list(MD_SPECIAL))
    def test_markdown_v2_every_special_character(self, char: str) -> None:
        assert escape(f"a{char}b", TextFormat.MARKDOWN_V2) == f"a\\{char}b"

    def test_markdown_v2_all_at_once(self) -> None:
        escaped = escape(MD_SPECIAL, TextFormat.MARKDOWN_V2)
        assert escaped == "".join(f"\\{c}" for c in MD_SPECIAL)
        assert _md_unescape(escaped) == MD_SPECIAL

    def test_markdown_v2_leaves_ordinary_text(self) -> None:
        text = "Hello, world: 42 é 🙂 & < \" ' ? ; / @ $ % ^"
        assert escape(text, TextFormat.MARKDOWN_V2) == text


# ------------------------------------------------------------------ format_text


def _md_unescape(text: str) -> str:
    """Undo MarkdownV2 escaping; fail on a reserved character left unescaped."""
    out = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            following = next(chars, None)
            assert following is not None, f"dangling backslash at the end of {text!r}"
            assert following in MD_SPECIAL, f"\\{following} is no escape: {text!r}"
            out.append(following)
        else:
            assert char not in MD_SPECIAL, f"unescaped {char!r} in {text!r}"
            out.append(char)
    return "".join(out)


_HTML_TEXT = re.compile(r"(?:[^&<>]|&(?:amp|lt|gt);)*")


def _plain_body(formatted_body: str, text_format: TextFormat) -> str:
    """The plain text behind a formatted body; asserts it is well formed."""
    if text_format is TextFormat.HTML:
        assert _HTML_TEXT.fullmatch(formatted_body), (
            f"a tag or a broken entity in the body: {formatted_body[-40:]!r}"
        )
        return html.unescape(formatted_body)
    if text_format is TextFormat.MARKDOWN_V2:
        return _md_unescape(formatted_body)
    return formatted_body


def _head(title: str, text_format: TextFormat) -> str:
    if text_format is TextFormat.HTML:
        return f"<b>{escape(title, text_format)}</b>"
    if text_format is TextFormat.MARKDOWN_V2:
        return f"*{escape(title, text_format)}*"
    return title


def check_cut(
    notification: Notification, text_format: TextFormat, limit: int, out: str
) -> str:
    """Assert the properties of a cut text; return the plain body text it kept."""
    assert len(out) <= limit
    assert out.endswith(escape(TRUNCATION_MARKER, text_format))
    head = _head(notification.title, text_format)
    assert out.startswith(head + "\n"), (head, out[:80])
    plain = _plain_body(out[len(head) + 1 :], text_format)
    assert plain.endswith(TRUNCATION_MARKER)
    kept = plain[: -len(TRUNCATION_MARKER)]
    if kept:
        assert kept.endswith("\n")
        kept = kept[:-1]
    assert notification.body.startswith(kept), (kept[-40:], notification.body[:80])
    return kept


FORMATS = [TextFormat.PLAIN, TextFormat.HTML, TextFormat.MARKDOWN_V2]


class TestFormatText:
    def test_html_shape(self) -> None:
        notification = Notification("a<b", "x & y\nz > 1")
        assert format_text(notification, TextFormat.HTML) == (
            "<b>a&lt;b</b>\nx &amp; y\nz &gt; 1"
        )

    def test_markdown_v2_shape(self) -> None:
        notification = Notification("v1.2 failed!", "exit code -1 (killed)")
        assert format_text(notification, TextFormat.MARKDOWN_V2) == (
            "*v1\\.2 failed\\!*\nexit code \\-1 \\(killed\\)"
        )

    def test_plain_shape_and_empty_body(self) -> None:
        assert format_text(Notification("t", "b"), TextFormat.PLAIN) == "t\nb"
        assert format_text(Notification("t", ""), TextFormat.PLAIN) == "t"
        assert format_text(Notification("t", ""), TextFormat.HTML) == "<b>t</b>"

    @pytest.mark.parametrize("text_format", FORMATS)
    def test_fitting_text_is_not_cut(self, text_format: TextFormat) -> None:
        notification = Notification("title", "line 1\nline 2 & <x>")
        full = format_text(notification, text_format)
        assert format_text(notification, text_format, len(full)) == full

    @pytest.mark.parametrize("text_format", FORMATS)
    def test_one_character_over_is_cut_with_the_marker(
        self, text_format: TextFormat
    ) -> None:
        notification = Notification("title", "\n".join(f"line {i}" for i in range(50)))
        full = format_text(notification, text_format)
        out = format_text(notification, text_format, len(full) - 1)
        check_cut(notification, text_format, len(full) - 1, out)

    def test_cut_at_a_line_boundary(self) -> None:
        notification = Notification("T", "first line\nsecond line\nthird line is long")
        # "T\nfirst line\nsecond line\n… (truncated)" is 39 characters.
        for limit in (39, 40, 42):  # 43 would fit the whole text
            assert format_text(notification, TextFormat.PLAIN, limit) == (
                "T\nfirst line\nsecond line\n" + TRUNCATION_MARKER
            ), limit
        assert format_text(notification, TextFormat.PLAIN, 30) == (
            "T\nfirst line\n" + TRUNCATION_MARKER
        )

    def test_a_single_over_long_line_is_cut_within_the_line(self) -> None:
        notification = Notification("T", "x" * 100 + "\nsecond")
        out = format_text(notification, TextFormat.PLAIN, 50)
        assert out == "T\n" + "x" * (50 - 3 - len(TRUNCATION_MARKER)) + "\n" + (
            TRUNCATION_MARKER
        )

    def test_entities_are_never_split(self) -> None:
        notification = Notification("T", "&" * 100)
        for limit in range(len("<b>T</b>\n\n") + len(TRUNCATION_MARKER), 80):
            out = format_text(notification, TextFormat.HTML, limit)
            kept = check_cut(notification, TextFormat.HTML, limit, out)
            # Each "&" costs five characters once escaped: as many as fit are kept.
            room = limit - len("<b>T</b>\n\n") - len(TRUNCATION_MARKER)
            assert len(kept) == room // 5

    def test_markdown_escapes_are_never_split(self) -> None:
        notification = Notification("T", "." * 100)
        for limit in range(len("*T*\n\n") + len("… \\(truncated\\)"), 60):
            out = format_text(notification, TextFormat.MARKDOWN_V2, limit)
            kept = check_cut(notification, TextFormat.MARKDOWN_V2, limit, out)
            room = limit - len("*T*\n\n") - len("… \\(truncated\\)")
            assert len(kept) == room // 2

    @pytest.mark.parametrize("text_format", FORMATS)
    def test_cut_property_on_random_bodies(self, text_format: TextFormat) -> None:
        rng = random.Random(20240501)
        alphabet = "abcdefghij      &&&<<<>>>_*[]()~`>#+-=|{}.!\\é🙂\t\"'"
        cuts = 0
        for _ in range(250):
            title = "".join(rng.choices(alphabet, k=rng.randint(0, 30)))
            lines = []
            for _ in range(rng.randint(0, 25)):
                length = rng.choice((0, 5, 40, 120, rng.randint(0, 1500)))
                lines.append("".join(rng.choices(alphabet, k=length)))
            notification = Notification(title, "\n".join(lines))
            floor = len(_head(title, text_format)) + 1
            floor += len(escape(TRUNCATION_MARKER, text_format))
            limit = rng.choice((floor, floor + rng.randint(0, 500), 4096))
            out = format_text(notification, text_format, limit)
            full = format_text(notification, text_format)
            if len(full) <= limit:
                assert out == full
                continue
            cuts += 1
            check_cut(notification, text_format, limit, out)
        assert cuts > 150

    @pytest.mark.parametrize("text_format", FORMATS)
    def test_over_long_title_is_cut(self, text_format: TextFormat) -> None:
        notification = Notification("&." * 200, "body")
        for limit in (30, 60, 200):
            out = format_text(notification, text_format, limit)
            assert len(out) <= limit
            if text_format is TextFormat.HTML:
                assert out.startswith("<b>")
                assert out.endswith(f"{TRUNCATION_MARKER}</b>")
                assert _HTML_TEXT.fullmatch(out[3:-4])
            elif text_format is TextFormat.MARKDOWN_V2:
                assert out.startswith("*")
                assert out.endswith("\\(truncated\\)*")
                _md_unescape(out[1:-1])
            else:
                assert out.endswith(TRUNCATION_MARKER)

    def test_tiny_limit_still_gives_valid_markdown_v2(self) -> None:
        notification = Notification("a long title", "body")
        # From 19 on, the whole "*a long title*\nbody" fits and nothing is cut.
        for limit in range(1, 19):
            out = format_text(notification, TextFormat.MARKDOWN_V2, limit)
            assert 0 < len(out) <= limit
            _md_unescape(out.strip("*"))

    def test_tiny_limit_plain(self) -> None:
        out = format_text(Notification("a long title", "body"), TextFormat.PLAIN, 5)
        assert out == TRUNCATION_MARKER[:5]

    def test_custom_compose(self) -> None:
        def compose(title: str, body: str, text_format: TextFormat) -> str:
            return f"[{title}] {escape(body, text_format)}"

        notification = Notification("T", "a&b\n" * 20)
        out = format_text(notification, TextFormat.HTML, 40, compose=compose)
        assert len(out) <= 40
        assert out.startswith("[T] a&amp;b\n")
        assert out.endswith(TRUNCATION_MARKER)

    def test_cutting_a_long_body_takes_work_linear_in_its_size(self) -> None:
        # format_text runs inside a channel's send(), on the dispatcher's one loop
        # thread: an agent error carrying a long log must not stall every channel.
        # Counted through compose= (no clock): the composed characters must stay
        # within a small multiple of the body's size.
        body = "\n".join(f"{i:05d} " + "x" * 54 for i in range(5000))
        budget = 40 * len(body)
        spent = 0

        def counting(title: str, text: str, text_format: TextFormat) -> str:
            nonlocal spent
            composed = (
                f"<b>{escape(title, text_format)}</b>\n{escape(text, text_format)}"
            )
            spent += len(composed)
            if spent > budget:
                raise AssertionError(
                    f"format_text composed over {budget:,} characters to cut a "
                    f"{len(body):,}-character body"
                )
            return composed

        notification = Notification("T", body)
        out = format_text(notification, TextFormat.HTML, 4096, compose=counting)
        assert len(out) <= 4096
        assert out.endswith(TRUNCATION_MARKER)


# ------------------------------------------------------------------ the output tail


class TestAlertTail:
    def test_a_short_tail_is_shown_whole(self) -> None:
        assert alert_tail("a\nb\n") == "a\nb"

    def test_only_the_newest_lines_are_shown_after_a_count_of_the_others(
        self,
    ) -> None:
        tail = "\n".join(f"line {n}" for n in range(200))
        shown = alert_tail(tail).split("\n")
        assert shown[0] == f"… {200 - ALERT_TAIL_LINES} earlier line(s) not shown"
        assert shown[1:] == [f"line {n}" for n in range(200 - ALERT_TAIL_LINES, 200)]

    def test_long_lines_are_bounded_by_characters_newest_kept(self) -> None:
        tail = "\n".join(f"{n:03d}" + "x" * 600 for n in range(10))
        shown = alert_tail(tail)
        assert len(shown) <= ALERT_TAIL_CHARS + 50
        assert shown.split("\n")[-1].startswith("009")
        assert shown.startswith("… 7 earlier line(s) not shown")
        one = alert_tail("y" * 10_000)
        assert len(one) == ALERT_TAIL_CHARS and one.endswith("y")

    def test_telegram_keeps_the_traceback_and_the_newest_output_of_a_long_tail(
        self,
    ) -> None:
        """With the orchestrator's 200-line tail, a Telegram alert (cut at 4,096
        characters) still shows the traceback's frames and the last output line."""
        traceback = (
            "Traceback (most recent call last):\n"
            '  File "/srv/etl/load.py", line 42, in task\n'
            "    load(batch)\n"
            "RuntimeError: batch 7 failed\n"
        )
        tail = "\n".join(f"progress {n}: " + "." * 60 for n in range(200))
        notification = render(
            kwargs_for(
                OrchestratorEvent.AGENT_ERROR,
                traceback=traceback,
                output_tail=tail + "\nlast words",
            )
        )
        text = format_text(notification, TextFormat.HTML, 4096)
        assert "/srv/etl/load.py:42 in task" in text
        assert "last words" in text
        assert "earlier line(s) not shown" in text


def test_an_operator_action_says_who_did_what_from_where() -> None:
    note = render(
        {
            "event": OrchestratorEvent.OPERATOR_ACTION,
            "agent_name": "etl",
            "action": "restart",
            "actor": "@alice",
            "source": "telegram",
            "ok": True,
            "result": "agent 'etl' restarted",
        }
    )
    assert note.title == "👤 restart etl by @alice (telegram)"
    assert note.body.startswith("agent 'etl' restarted\n")
    assert note.severity is Severity.INFO
