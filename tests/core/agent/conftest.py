"""Fixtures for the agent-layer tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pyorchestrate.core.utilities.messaging import MessageChannel


@pytest.fixture
def channel() -> Iterator[MessageChannel]:
    """A MessageChannel that is emptied and closed after the test."""
    ch = MessageChannel()
    yield ch
    ch.drain(0)
    ch.close()
