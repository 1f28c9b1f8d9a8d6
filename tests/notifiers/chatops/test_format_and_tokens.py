"""Replies fit Telegram's 4,096 characters without cutting a tag or an entity; button
tokens fit its 64 bytes and any change to one is refused."""

from __future__ import annotations

import re

import pytest

from notifiers.chatops import CallbackSigner, InvalidToken
from notifiers.chatops._format import MAX_TEXT, fit, format_ps


def test_a_long_table_is_cut_on_a_line_and_says_so() -> None:
    agents = [
        {
            "name": f"worker-<{i}>&co",
            "lifecycle_state": "READY",
            "pid": 1000 + i,
            "alive": True,
            "uptime": 3600.0 + i,
            "restarts": i % 3,
        }
        for i in range(2000)
    ]
    text = format_ps({"agents": agents, "running_count": 2000, "max_workers": 2000})
    assert len(text) <= MAX_TEXT
    assert text.startswith("<b>2000 agent(s)</b>")
    assert text.count("<pre>") == text.count("</pre>") == 1
    assert re.search(r"… \d+ more line\(s\) not shown</pre>$", text)
    assert "&lt;" in text and "<0>" not in text
    assert not re.search(r"&[a-z]*$", text.split("\n")[-2])  # no entity cut in two


def test_fit_keeps_short_text_whole() -> None:
    assert fit("<b>x</b>", ["a < b"], pre=True) == "<b>x</b>\n<pre>a &lt; b</pre>"


def test_tokens_fit_64_bytes_and_any_change_is_refused() -> None:
    signer = CallbackSigner(b"k" * 32, clock=lambda: 4_000_000_000.0)
    token = signer.sign("restart", 2**40)
    assert len(token.encode()) <= 64
    assert signer.verify(token).alert == 2**40
    for index in range(len(token)):
        changed = (
            token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]
        )
        with pytest.raises(InvalidToken):
            signer.verify(changed)
    with pytest.raises(InvalidToken, match="expired"):
        CallbackSigner(b"k" * 32, ttl=60, clock=lambda: 4_000_000_061.0).verify(token)
    with pytest.raises(InvalidToken, match="future"):
        CallbackSigner(b"k" * 32, clock=lambda: 3_999_999_000.0).verify(token)
