"""The ``pyorchestrate`` command line: inspect and control a running orchestrator."""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """Entry point of the ``pyorchestrate`` script and ``python -m pyorchestrate``."""
    import sys

    from ._app import run

    sys.exit(run())
