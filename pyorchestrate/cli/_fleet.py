"""``pyorchestrate run FILE`` and ``pyorchestrate check FILE``: a fleet from a file.

The fleet package (pydantic, the agent classes) is imported only by these commands,
so the other commands stay light.
"""

from __future__ import annotations

import logging
import sys
from argparse import Namespace
from typing import TYPE_CHECKING

from . import _render as render
from ._commands import EXIT_FAILED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from ..fleet import Fleet

__all__ = ["check", "run"]

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _load(args: Namespace) -> Fleet | None:
    from ..fleet import FleetError, load_fleet

    try:
        return load_fleet(args.file)
    except FleetError as exc:
        if args.json:
            render.print_json(
                {
                    "valid": False,
                    "file": args.file,
                    "errors": [{"path": p, "reason": r} for p, r in exc.errors],
                }
            )
        else:
            render.error(str(exc))
        return None


def check(args: Namespace) -> int:
    """Validate the file, print the resolved fleet (secrets masked): 0 valid, 2 not."""
    fleet = _load(args)
    if fleet is None:
        return EXIT_USAGE
    summary = fleet.summary()
    if args.json:
        render.print_json({"valid": True, **summary})
        return EXIT_OK
    grid = render.Grid(
        ("AGENT", "KIND", "RUNS", "SCHEDULE", "DEPENDS ON", "RESTART", "ENV"),
        title=f"{summary['orchestrator']} ({summary['run_mode']}) from {summary['file']}",
    )
    for agent in summary["agents"]:
        env = " ".join(f"{k}={v}" for k, v in agent["env"].items())
        grid.rows.append(
            (
                agent["name"],
                agent["kind"],
                agent["runs"],
                agent["schedule"] or "-",
                ", ".join(agent["depends_on"]) or "-",
                agent["restart"],
                env or "-",
            )
        )
    render.show(grid)
    notify = summary["notify"]
    if notify is not None:
        channels = ", ".join(notify["channels"]) or "none"
        render.out(f"alerts: {channels} (preset {notify['preset']})")
    for warning in summary["warnings"]:
        render.warning(f"{warning['path']}: {warning['reason']}")
    return EXIT_OK


def run(args: Namespace) -> int:
    """Run the fleet in the foreground until done or stopped; the run's exit code
    (0 ok, 1 an agent failed, 2 bad file, 130/143 SIGINT/SIGTERM)."""
    fleet = _load(args)
    if fleet is None:
        return EXIT_USAGE
    from ..core.errors import PyOrchestrateError
    from ..fleet import FleetRunner

    _log_to_stderr(logging.DEBUG if args.verbose else logging.INFO)
    runner = FleetRunner(fleet, once=args.once)
    try:
        code = runner.run()
    except (PyOrchestrateError, LookupError, ValueError, OSError) as exc:
        render.error(f"cannot run {args.file}: {fleet.redact(str(exc))}")
        return EXIT_FAILED
    outcome = runner.orchestrator.outcome()
    for failure in outcome.failed:
        render.error(f"agent failed: {fleet.redact(str(failure))}")
    return code


def _log_to_stderr(level: int) -> None:
    """One plain handler on the root logger (journald and pipes read it whole)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
