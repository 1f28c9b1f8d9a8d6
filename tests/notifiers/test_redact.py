"""Secrets never leak: the registry, redact(), the logging filter and its installation.

``SECRETS`` is process-wide, so every secret here is unique to its test.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator

import pytest

from notifiers.redact import (
    LEAKY_LOGGERS,
    MASK,
    SECRETS,
    RedactingFilter,
    SecretRegistry,
    install_log_redaction,
    redact,
)

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"
"""Shaped like a Telegram bot token, never registered."""


def unique_secret() -> str:
    return f"s3cret-{uuid.uuid4().hex}"


class TestSecretRegistry:
    def test_add_and_redact(self) -> None:
        registry = SecretRegistry()
        registry.add("hunter22", None, "")
        assert "hunter22" in registry
        assert len(registry) == 1
        assert registry.redact("password=hunter22;") == f"password={MASK};"

    def test_short_strings_are_ignored(self) -> None:
        registry = SecretRegistry()
        registry.add("abc", "x")
        assert len(registry) == 0
        assert registry.redact("abc x") == "abc x"

    def test_longest_secret_wins(self) -> None:
        registry = SecretRegistry()
        registry.add("abcd", "abcdefghij")
        assert registry.redact("<abcdefghij>") == f"<{MASK}>"
        assert "efghij" not in registry.redact("abcdefghij")

    def test_every_occurrence(self) -> None:
        registry = SecretRegistry()
        registry.add("tok3n")
        assert registry.redact("tok3n tok3n-tok3n") == f"{MASK} {MASK}-{MASK}"

    def test_regex_characters_are_literal(self) -> None:
        registry = SecretRegistry()
        registry.add("a.b*c+(d)")
        assert registry.redact("a.b*c+(d) axbbbc+d") == f"{MASK} axbbbc+d"

    def test_adding_the_same_secret_again(self) -> None:
        registry = SecretRegistry()
        registry.add("again-and-again")
        registry.add("again-and-again")
        assert len(registry) == 1


class TestRedact:
    def test_registered_secret(self) -> None:
        secret = unique_secret()
        SECRETS.add(secret)
        # Other tests register secrets in the same registry, so only the part
        # around this secret is checked.
        masked = redact(f"url=https://hooks.example/{secret}/x")
        assert secret not in masked
        assert masked.endswith(f"/{MASK}/x")

    def test_any_object(self) -> None:
        secret = unique_secret()
        SECRETS.add(secret)
        masked = redact(ValueError(f"bad {secret}"))
        assert secret not in masked
        assert masked.endswith(f" {MASK}")
        assert redact(None) == "None"

    @pytest.mark.parametrize(
        "template",
        [
            "{}",
            "token={}",
            "token: {} (invalid)",
            "'{}'",
            "Unauthorized for {}",
        ],
    )
    def test_bot_token_shape_is_masked_unregistered(self, template: str) -> None:
        text = redact(template.format(BOT_TOKEN))
        assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ" not in text
        assert MASK in text

    def test_bot_token_shape_is_masked_in_a_telegram_url(self) -> None:
        # The case the shape regex exists for: httpx logs every request URL, and
        # Telegram's URLs carry the token right after "bot" (no word boundary).
        lines = [
            f"POST https://api.telegram.org/bot{BOT_TOKEN}/sendMessage",
            f'HTTP Request: POST https://api.telegram.org/bot{BOT_TOKEN}/getMe "200"',
            f"https://api.telegram.org/file/bot{BOT_TOKEN}/photos/file_1.jpg",
        ]
        secret_part = BOT_TOKEN.split(":")[1]
        leaked = [line for line in lines if secret_part in redact(line)]
        assert leaked == []

    def test_ordinary_text_is_untouched(self) -> None:
        text = "agent worker failed at 12:00:01, exit code 1 (pid 4242) 12345:abc"
        assert SecretRegistry().redact(text) == text


def _logger_with_output(name: str) -> tuple[logging.Logger, io.StringIO]:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.addFilter(RedactingFilter())
    return logger, stream


@pytest.fixture
def filtered() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    name = f"tests.redact.{uuid.uuid4().hex}"
    logger, stream = _logger_with_output(name)
    yield logger, stream
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    for log_filter in list(logger.filters):
        logger.removeFilter(log_filter)


class TestRedactingFilter:
    def test_message(self, filtered: tuple[logging.Logger, io.StringIO]) -> None:
        logger, stream = filtered
        secret = unique_secret()
        SECRETS.add(secret)
        logger.info(f"connecting with {secret}")  # noqa: G004 (the secret in msg)
        assert secret not in stream.getvalue()
        assert f"INFO connecting with {MASK}" in stream.getvalue()

    def test_args(self, filtered: tuple[logging.Logger, io.StringIO]) -> None:
        logger, stream = filtered
        secret = unique_secret()
        SECRETS.add(secret)
        logger.warning("password %s for %s", secret, "user")
        logger.warning("%(url)s", {"url": f"https://x/{secret}"})
        output = stream.getvalue()
        assert secret not in output
        assert f"password {MASK} for user" in output
        assert f"https://x/{MASK}" in output

    def test_bot_token_in_args(
        self, filtered: tuple[logging.Logger, io.StringIO]
    ) -> None:
        logger, stream = filtered
        logger.info("token %s rejected", BOT_TOKEN)
        assert BOT_TOKEN not in stream.getvalue()

    def test_record_is_rewritten(self) -> None:
        secret = unique_secret()
        SECRETS.add(secret)
        record = logging.LogRecord(
            "x", logging.INFO, __file__, 1, "key=%s", (secret,), None
        )
        assert RedactingFilter().filter(record) is True
        assert record.args is None
        assert record.getMessage() == f"key={MASK}"

    def test_exception_text(self, filtered: tuple[logging.Logger, io.StringIO]) -> None:
        logger, stream = filtered
        secret = unique_secret()
        SECRETS.add(secret)
        try:
            raise RuntimeError(f"login failed for {secret}")
        except RuntimeError:
            logger.exception("send failed")
        output = stream.getvalue()
        assert secret not in output
        assert "Traceback (most recent call last)" in output
        assert f"RuntimeError: login failed for {MASK}" in output

    def test_cached_exception_text(self) -> None:
        secret = unique_secret()
        SECRETS.add(secret)
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "m", None, None)
        record.exc_text = f"Traceback: {secret}"
        RedactingFilter().filter(record)
        assert record.exc_text == f"Traceback: {MASK}"

    def test_broken_format_string(
        self, filtered: tuple[logging.Logger, io.StringIO]
    ) -> None:
        logger, stream = filtered
        secret = unique_secret()
        SECRETS.add(secret)
        logger.info(f"%d items for {secret}", "not-a-number")  # noqa: G004
        output = stream.getvalue()
        assert secret not in output
        assert f"%d items for {MASK}" in output


class TestInstall:
    def test_installs_on_names_and_existing_children(self) -> None:
        base = f"tests-leaky-{uuid.uuid4().hex}"
        child = logging.getLogger(f"{base}.child")
        install_log_redaction([base])
        parent = logging.getLogger(base)
        assert any(isinstance(f, RedactingFilter) for f in parent.filters)
        assert any(isinstance(f, RedactingFilter) for f in child.filters)

    def test_idempotent(self) -> None:
        base = f"tests-leaky-{uuid.uuid4().hex}"
        install_log_redaction([base])
        install_log_redaction([base])
        logger = logging.getLogger(base)
        assert sum(isinstance(f, RedactingFilter) for f in logger.filters) == 1

    def test_later_children_on_the_next_call(self) -> None:
        base = f"tests-leaky-{uuid.uuid4().hex}"
        install_log_redaction([base])
        late = logging.getLogger(f"{base}.late")
        assert not late.filters
        install_log_redaction([base])
        assert any(isinstance(f, RedactingFilter) for f in late.filters)

    def test_default_loggers(self) -> None:
        install_log_redaction()
        for name in LEAKY_LOGGERS:
            logger = logging.getLogger(name)
            assert any(isinstance(f, RedactingFilter) for f in logger.filters), name

    def test_httpx_request_line_is_masked(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        install_log_redaction()
        secret = f"98765:{uuid.uuid4().hex}"
        SECRETS.add(secret, f"bot{secret}")
        with caplog.at_level(logging.INFO, logger="httpx"):
            logging.getLogger("httpx").info(
                'HTTP Request: POST %s "HTTP/1.1 200 OK"',
                f"https://api.telegram.org/bot{secret}/sendMessage",
            )
        assert secret not in caplog.text
        assert "api.telegram.org/" in caplog.text
