"""The router's selector keeps handles registered between wake-ups, and must follow
every change: a closed handle leaves, a new generation's handle is registered even when
it reuses the old one's number."""

from __future__ import annotations

import os
import selectors
from dataclasses import dataclass

from pyorchestrate.core.orchestrator.router import _Key, _sync


@dataclass(eq=False)
class _Entry:
    generation_id: int


def _ready(selector: selectors.BaseSelector) -> list[object]:
    return [key.data for key, _ in selector.select(0)]


def test_a_reused_descriptor_number_is_registered_again_for_the_new_generation() -> (
    None
):
    selector = selectors.DefaultSelector()
    registered: dict[_Key, int] = {}
    entry = _Entry(generation_id=1)
    old_r, old_w = os.pipe()
    try:
        _sync(selector, registered, {old_r: (entry, "sentinel")})  # type: ignore[dict-item]
        os.close(old_r)
        os.close(old_w)
        new_r, new_w = os.pipe()
        assert new_r == old_r  # the kernel hands out the lowest free number again
        entry.generation_id = 2
        _sync(selector, registered, {new_r: (entry, "sentinel")})  # type: ignore[dict-item]
        os.write(new_w, b"x")
        assert _ready(selector) == [new_r]  # the new pipe is watched
        assert list(registered.values()) == [new_r]
        os.close(new_r)
        os.close(new_w)
    finally:
        selector.close()


def test_only_what_changed_is_touched_and_removed_handles_leave() -> None:
    selector = selectors.DefaultSelector()
    registered: dict[_Key, int] = {}
    a, b = _Entry(1), _Entry(1)
    pa, pb = os.pipe(), os.pipe()
    try:
        watched = {pa[0]: (a, "sentinel"), pb[0]: (b, "sentinel")}
        _sync(selector, registered, watched)  # type: ignore[arg-type]
        before = dict(selector.get_map())  # type: ignore[arg-type]
        _sync(selector, registered, watched)  # type: ignore[arg-type]
        assert dict(selector.get_map()) == before  # type: ignore[arg-type]
        _sync(selector, registered, {pa[0]: (a, "sentinel")})  # type: ignore[dict-item]
        assert set(selector.get_map()) == {pa[0]}  # type: ignore[arg-type]
        os.write(pb[1], b"x")
        os.write(pa[1], b"x")
        assert _ready(selector) == [pa[0]]
    finally:
        selector.close()
        for fd in (*pa, *pb):
            os.close(fd)
