"""``python -m pyorchestrate`` runs the command line."""

from __future__ import annotations

from pyorchestrate.cli import main

if __name__ == "__main__":
    main()
