"""The preset table's old home: :mod:`notifiers._presets` holds it (below settings)."""

from __future__ import annotations

from .._presets import PRESETS, Preset

__all__ = ["PRESETS", "Preset"]
