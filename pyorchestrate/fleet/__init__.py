"""A fleet in one file: ``pyorchestrate run fleet.toml``.

::

    from pyorchestrate.fleet import FleetRunner, load_fleet

    fleet = load_fleet("fleet.toml")  # FleetError lists every problem, secrets masked
    runner = FleetRunner(fleet)
    sys.exit(runner.run())  # SIGHUP (or `pyorchestrate reload`) re-reads the file

The file (TOML) has an ``[orchestrator]`` table (``name`` and every
``Orchestrator.Config`` field), one ``[agents.NAME]`` table per agent (a ``command``
or a Python agent ``class``, its ``config``, ``depends_on``, ``supervision``,
schedule keys, and a command's ``env`` and ``cwd``) and an optional ``[notify]``
table (the notifier settings: ``[notify.telegram]``, ``[notify.email]``, ...).
``${VAR}`` and ``${VAR:-default}`` are read from the environment; in ``[notify]``, a
``KEY_file`` key reads ``KEY`` from a file. The whole reference, generated from
the models, is docs/reference/fleet.md.

The core never imports ``notifiers``: the ``[notify]`` table is validated and
attached through the ``pyorchestrate.notify`` entry points, looked up only when a
file has the table.
"""

from __future__ import annotations

from ._load import AgentDefinition, Fleet, FleetError, load_fleet
from ._model import AgentTable
from ._runner import FleetRunner, ReloadPlan

__all__ = [
    "AgentDefinition",
    "AgentTable",
    "Fleet",
    "FleetError",
    "FleetRunner",
    "ReloadPlan",
    "load_fleet",
]
