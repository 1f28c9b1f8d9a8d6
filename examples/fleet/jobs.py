"""The Python agent of examples/fleet/fleet.toml: ``class = "jobs:DailyReport"``.

``pyorchestrate run`` imports it with the fleet file's directory first on
``sys.path``; its ``config`` table fills ``DailyReport.Config``.
"""

from __future__ import annotations

from pathlib import Path

from pyorchestrate import OneShotProcessAgent


class DailyReport(OneShotProcessAgent):
    """Counts the backups made so far and writes one line about it."""

    class Config(OneShotProcessAgent.Config):
        backups: str = "/srv/backups"
        title: str = "backups"

    def task(self) -> None:
        config = self.config
        assert isinstance(config, DailyReport.Config)
        found = sorted(Path(config.backups).glob("*.tar.gz"))
        print(
            f"{config.title}: {len(found)} archive(s) in {config.backups}", flush=True
        )
