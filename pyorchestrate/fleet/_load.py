"""Read a fleet file: TOML → interpolation → validation → a :class:`Fleet`.

Every problem is collected into one :class:`FleetError`, one ``path: reason`` line
each (``agents.backup.schedule: ...``), and no line shows a secret: every value that
came from a ``*_file`` or from a ``${VAR}`` whose name (or key) looks secret is
replaced by ``****``.
"""

from __future__ import annotations

import difflib
import graphlib
import importlib
import inspect
import os
import shutil
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..core.agent.base import AgentConfig, BaseAgent, build_agent_config
from ..core.agent.command import CommandAgent, CommandConfig, mask_env
from ..core.agent.oneshot import OneShotAgent
from ..core.agent.ray_backend import RayOptions
from ..core.config import render_validation_error
from ..core.errors import ConfigError, RegistrationError
from ..core.names import check_agent_name
from ..core.orchestrator.config import OrchestratorConfig, RunMode
from ..core.orchestrator.scheduler import check_schedule
from ..core.schedule import Schedule
from ._interpolate import Interpolator
from ._model import AgentTable, table_keys
from ._notify import validate_notify

__all__ = ["MASK", "AgentDefinition", "Fleet", "FleetError", "load_fleet", "redact"]

MASK = "****"

_TOP_KEYS = ("orchestrator", "agents", "notify")
_ORCHESTRATOR_KEYS = ("name", *OrchestratorConfig.model_fields)
_AGENT_KEYS = tuple(table_keys(AgentTable))
_COMMAND_ONLY = ("env", "cwd")
_NOTIFY_CONFIG_FILE = "PYORCHESTRATE_NOTIFY_CONFIG_FILE"


class FleetError(ConfigError):
    """A fleet file is invalid: ``errors`` lists every ``(path, reason)``, masked."""


@dataclass(frozen=True, slots=True, eq=False)
class AgentDefinition:
    """One agent as the file defines it, validated and ready to register."""

    name: str
    table: AgentTable
    """The table as written (after interpolation): two definitions with equal tables
    are the same agent, so a reload leaves it alone."""
    agent_class: type[BaseAgent]
    config: AgentConfig
    schedule: Schedule | None = None

    @property
    def kind(self) -> str:
        """``command`` or ``class``."""
        return "command" if self.table.command is not None else "class"

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The agents it waits for."""
        return tuple(self.table.depends_on)

    @property
    def is_scheduled(self) -> bool:
        """Whether it runs on a schedule (``schedule`` or ``every``)."""
        return self.schedule is not None

    @property
    def is_long_running(self) -> bool:
        """A command or an agent class that is not a one-shot, without a schedule."""
        if self.is_scheduled:
            return False
        return self.kind == "command" or not issubclass(self.agent_class, OneShotAgent)

    def describe(self) -> str:
        """What it runs: the command line, or the class path."""
        if isinstance(self.config, CommandConfig):
            command = self.config.command
            return command if isinstance(command, str) else _join_argv(command)
        return self.table.class_ or self.agent_class.__qualname__

    def same_as(self, other: AgentDefinition) -> bool:
        """Whether a reload may leave it alone (same table, same class)."""
        return self.table == other.table and self.agent_class is other.agent_class


@dataclass(frozen=True, slots=True, eq=False)
class Fleet:
    """A validated fleet file."""

    path: Path
    name: str
    config: OrchestratorConfig
    orchestrator_table: Mapping[str, Any]
    agents: Mapping[str, AgentDefinition]
    notify: object | None = None
    """The validated notifier settings (``None`` without a ``[notify]`` table)."""
    notify_table: Mapping[str, Any] | None = None
    secrets: frozenset[str] = frozenset()
    warnings: tuple[tuple[str, str], ...] = ()
    run_mode_given: bool = field(default=False)

    def redact(self, text: str) -> str:
        """``text`` with every secret of the file replaced by ``****``."""
        return redact(text, self.secrets)

    def summary(self) -> dict[str, Any]:
        """The resolved fleet as JSON-safe data, every secret masked (what
        ``pyorchestrate check`` prints)."""
        agents = []
        for agent in self.agents.values():
            config = agent.config
            env = mask_env(config.env) if isinstance(config, CommandConfig) else {}
            cwd = config.cwd if isinstance(config, CommandConfig) else None
            agents.append(
                {
                    "name": agent.name,
                    "kind": agent.kind,
                    "runs": self.redact(agent.describe()),
                    "depends_on": list(agent.depends_on),
                    "schedule": agent.schedule.describe() if agent.schedule else None,
                    "restart": config.supervision.restart,
                    "env": {k: self.redact(v) for k, v in env.items()},
                    "cwd": cwd,
                }
            )
        notify = None
        if self.notify_table is not None:
            notify = {
                "channels": sorted(
                    k
                    for k, v in self.notify_table.items()
                    if isinstance(v, dict) and k != "rules" and k != "retry"
                ),
                "preset": str(self.notify_table.get("preset", "errors_only")),
            }
        return {
            "file": str(self.path),
            "orchestrator": self.name,
            "run_mode": self.run_mode().value,
            "agents": agents,
            "notify": notify,
            "warnings": [
                {"path": p, "reason": self.redact(r)} for p, r in self.warnings
            ],
        }

    def run_mode(self, *, once: bool = False) -> RunMode:
        """STOP_ON_EMPTY with ``once``; else the file's ``run_mode`` if given, else
        DAEMON when an agent is scheduled or long-running (STOP_ON_EMPTY when every
        agent is a one-shot that runs once)."""
        if once:
            return RunMode.STOP_ON_EMPTY
        if self.run_mode_given:
            return self.config.run_mode
        if any(a.is_scheduled or a.is_long_running for a in self.agents.values()):
            return RunMode.DAEMON
        return RunMode.STOP_ON_EMPTY


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` replaced by ``****`` (longest first)."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def load_fleet(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
) -> Fleet:
    """Read, interpolate and validate the fleet file at ``path``.

    Agent classes are imported with the file's directory first on ``sys.path``.

    Raises:
        FleetError: every problem, one ``path: reason`` per line, secrets masked.
    """
    file = Path(path).expanduser()
    title = f"invalid fleet file {str(file)!r}"
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise FleetError(title, [("", f"cannot read it: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise FleetError(title, [("", f"not UTF-8 text: {exc.reason}")]) from None
    if file.suffix.lower() in YAML_SUFFIXES:
        raw = _parse_yaml(text, title)
    else:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise FleetError(title, [("", f"not valid TOML: {exc}")]) from None
    loader = _Loader(file.absolute(), os.environ if environ is None else environ)
    fleet = loader.load(raw)
    if loader.errors or fleet is None:
        errors = [
            (loc, redact(reason, loader.secrets)) for loc, reason in loader.errors
        ]
        raise FleetError(title, errors)
    return fleet


YAML_SUFFIXES = (".yaml", ".yml")
"""A fleet file with one of these suffixes is read as YAML (PyYAML, the ``yaml``
extra), with the same tables as TOML; any other as TOML."""


def _parse_yaml(text: str, title: str) -> dict[str, Any]:
    try:
        import yaml
    except ImportError:
        raise FleetError(
            title,
            [("", "reading YAML needs PyYAML: pip install 'pyorchestrate[yaml]'")],
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Not str(exc): it quotes the offending line, which may hold a secret.
        where = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        raise FleetError(title, [("", f"not valid YAML: {problem}{at}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FleetError(
            title, [("", "must be a mapping of tables (orchestrator, agents, notify)")]
        )
    return data


class _Loader:
    """One reading of one file: the errors and secrets it finds on the way."""

    def __init__(self, path: Path, environ: Mapping[str, str]) -> None:
        self.path = path
        self.interpolator = Interpolator(environ, path.parent)
        self.errors: list[tuple[str, str]] = []

    @property
    def secrets(self) -> set[str]:
        return self.interpolator.secrets

    def error(self, path: str, reason: str) -> None:
        self.errors.append((path, reason))

    def load(self, raw: dict[str, Any]) -> Fleet | None:
        self.check_keys(raw, _TOP_KEYS, "")
        data = self.interpolator.expand(raw, "")
        orchestrator_table = self.table(data, "orchestrator")
        agents_table = self.table(data, "agents")
        notify_table = self.table(data, "notify") if "notify" in data else None
        if notify_table is not None:
            notify_table = self.interpolator.read_secret_files(notify_table, "notify")
        self.errors.extend(self.interpolator.errors)
        self.interpolator.errors.clear()

        name, config = self.orchestrator(orchestrator_table, self.path.stem)
        sys_path_entry = str(self.path.parent)
        if sys_path_entry not in sys.path:
            sys.path.insert(0, sys_path_entry)
        agents: dict[str, AgentDefinition] = {}
        for agent_name, table in agents_table.items():
            definition = self.agent(str(agent_name), table)
            if definition is not None:
                agents[definition.name] = definition
        if not agents_table:
            self.error("agents", "no agent: add an [agents.NAME] table")
        self.dependencies(agents_table, set(agents))
        settings = None
        if notify_table is not None:
            settings, problems = validate_notify(notify_table)
            self.errors.extend(problems)
        if self.errors or config is None:
            return None
        return Fleet(
            path=self.path,
            name=name,
            config=config,
            orchestrator_table=orchestrator_table,
            agents=agents,
            notify=settings,
            notify_table=notify_table,
            secrets=frozenset(self.secrets),
            warnings=tuple(
                [*self.command_warnings(agents.values()), *self.notify_warnings()]
                if notify_table is not None
                else self.command_warnings(agents.values())
            ),
            run_mode_given="run_mode" in orchestrator_table,
        )

    # ------------------------------------------------------------ pieces
    def table(self, data: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.error(key, f"must be a table ([{key}]), not {_kind(value)}")
            return {}
        return value

    def check_keys(
        self, table: Mapping[str, Any], known: Iterable[str], path: str
    ) -> list[str]:
        """Report the unknown keys of ``table`` (with a did-you-mean); return them."""
        names = list(known)
        unknown = [key for key in table if key not in names]
        for key in unknown:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.7)
            hint = f", did you mean {close[0]!r}?" if close else ""
            known_list = "" if close else f" (known: {', '.join(names)})"
            self.error(_at(path, key), f"unknown key{hint}{known_list}")
        return unknown

    def orchestrator(
        self, table: dict[str, Any], default_name: str
    ) -> tuple[str, OrchestratorConfig | None]:
        unknown = self.check_keys(table, _ORCHESTRATOR_KEYS, "orchestrator")
        values = {k: v for k, v in table.items() if k not in unknown and k != "name"}
        name = table.get("name", default_name)
        if not isinstance(name, str) or not name.strip():
            self.error("orchestrator.name", "must be a non-empty string")
            name = default_name
        try:
            return name, OrchestratorConfig.from_data(values, strict=True)
        except ConfigError as exc:
            for loc, reason in exc.errors:
                self.error(_at("orchestrator", loc), reason)
            return name, None

    def agent(self, name: str, raw: Any) -> AgentDefinition | None:
        path = f"agents.{name}"
        try:
            check_agent_name(name)
        except (TypeError, ValueError) as exc:
            self.error(path, str(exc))
            return None
        if not isinstance(raw, dict):
            self.error(path, f"must be a table ([{path}]), not {_kind(raw)}")
            return None
        unknown = self.check_keys(raw, _AGENT_KEYS, path)
        try:
            table = AgentTable.model_validate(
                {k: v for k, v in raw.items() if k not in unknown}
            )
        except ValidationError as exc:
            for loc, reason in render_validation_error(exc):
                self.error(_at(path, loc), reason)
            return None
        if (table.command is None) == (table.class_ is None):
            which = "both" if table.command is not None else "neither"
            self.error(path, f"give either 'command' or 'class' ({which} given)")
            return None
        schedule = self.schedule(table, path)
        agent_class = (
            CommandAgent if table.command is not None else self.agent_class(table, path)
        )
        if agent_class is None:
            return None
        data = dict(table.config)
        if table.supervision:
            if "supervision" in data:
                self.error(
                    f"{path}.supervision",
                    "given twice (also in config): keep one",
                )
                return None
            data["supervision"] = dict(table.supervision)
        if agent_class is CommandAgent:
            data["command"] = table.command
            for key in _COMMAND_ONLY:
                value = getattr(table, key)
                if key in data:
                    self.error(
                        f"{path}.config.{key}", f"give {key!r} once, not in config"
                    )
                    return None
                if value is not None and value != {}:
                    data[key] = value
        else:
            for key in _COMMAND_ONLY:
                if getattr(table, key) not in (None, {}):
                    self.error(
                        f"{path}.{key}",
                        "only a command agent takes it (set it in the orchestrator's "
                        "environment for a Python agent)",
                    )
                    return None
        try:
            config = build_agent_config(
                agent_class, data, strict=agent_class is CommandAgent
            )
        except ConfigError as exc:
            for loc, reason in exc.errors:
                head = loc.split(".", 1)[0]
                where = (
                    _at(path, loc)
                    if head in ("command", "supervision", *_COMMAND_ONLY)
                    else _at(f"{path}.config", loc)
                )
                self.error(where, reason)
            return None
        except (TypeError, ValueError) as exc:
            self.error(f"{path}.config", str(exc))
            return None
        if table.command is not None and table.backend == "ray":
            self.error(
                f"{path}.backend",
                "a command runs from the orchestrator's machine, not on Ray",
            )
            return None
        if table.ray_options:
            try:
                RayOptions.from_data(table.ray_options)
            except ConfigError as exc:
                for loc, reason in exc.errors:
                    self.error(_at(f"{path}.ray_options", loc), reason)
                return None
        if schedule is None and table.has_schedule:
            return None
        try:
            check_schedule(agent_class, name, schedule)
        except RegistrationError as exc:
            reason = (
                str(exc).removeprefix(f"agent {name!r}: ").removeprefix("schedule: ")
            )
            self.error(f"{path}.schedule", reason)
            return None
        return AgentDefinition(name, table, agent_class, config, schedule)

    def agent_class(self, table: AgentTable, path: str) -> type[BaseAgent] | None:
        target = table.class_ or ""
        where = f"{path}.class"
        module_name, colon, attribute = target.partition(":")
        if not colon:
            module_name, _, attribute = target.rpartition(".")
        if not module_name or not attribute:
            self.error(where, f"must be 'package.module:Class', not {target!r}")
            return None
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            self.error(where, f"cannot import module {module_name!r}: {exc}")
            return None
        except Exception as exc:  # the module itself failed: say what it raised
            self.error(
                where,
                f"importing module {module_name!r} raised {type(exc).__name__}: {exc}",
            )
            return None
        found: Any = module
        for part in attribute.split("."):
            found = getattr(found, part, None)
            if found is None:
                self.error(
                    where, f"module {module_name!r} has no attribute {attribute!r}"
                )
                return None
        if not (inspect.isclass(found) and issubclass(found, BaseAgent)):
            self.error(
                where,
                f"{module_name}:{attribute} is not an agent class (a …ThreadAgent or "
                "…ProcessAgent)",
            )
            return None
        if found.flavour not in ("thread", "process") or inspect.isabstract(found):
            self.error(
                where,
                f"{module_name}:{attribute} is abstract, or neither a thread nor a "
                "process agent",
            )
            return None
        return found

    def schedule(self, table: AgentTable, path: str) -> Schedule | None:
        """The table's schedule keys as a :class:`~pyorchestrate.Schedule` (the file's
        ``schedule`` is its ``cron``), or ``None`` without ``schedule``/``every``."""
        values = table.schedule_table()
        if not table.has_schedule:
            if values:
                key = next(iter(values))
                self.error(
                    f"{path}.{key}", "needs a 'schedule' or 'every' in the table"
                )
            return None
        if "schedule" in values:
            values["cron"] = values.pop("schedule")
        try:
            return Schedule.from_data(values)
        except ConfigError as exc:
            for loc, reason in exc.errors:
                head = loc.split(".", 1)[0]
                key = "schedule" if head in ("cron", "") else loc
                if head == "" and "'cron' and 'every'" in reason:
                    reason = "give 'schedule' or 'every', not both"
                self.error(f"{path}.{key}", reason)
            return None

    def dependencies(self, tables: Mapping[str, Any], names: set[str]) -> None:
        graph: dict[str, list[str]] = {}
        for name, raw in tables.items():
            deps = raw.get("depends_on", []) if isinstance(raw, dict) else []
            if not isinstance(deps, list):
                continue  # reported by the table's validation
            for index, dep in enumerate(deps):
                if not isinstance(dep, str):
                    continue
                if dep not in tables:
                    close = difflib.get_close_matches(dep, list(tables), n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    self.error(
                        f"agents.{name}.depends_on[{index}]",
                        f"no agent named {dep!r} in the file{hint}",
                    )
                elif dep == name:
                    self.error(
                        f"agents.{name}.depends_on[{index}]",
                        "an agent cannot wait for itself",
                    )
            graph[str(name)] = [d for d in deps if isinstance(d, str) and d in tables]
        try:
            tuple(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as exc:
            cycle: list[str] = list(exc.args[1])
            if len(cycle) > 2:  # a self-loop is reported above
                self.error(
                    f"agents.{cycle[-1]}.depends_on",
                    "dependency cycle: " + " -> ".join(reversed(cycle)),
                )

    def notify_warnings(self) -> list[tuple[str, str]]:
        """The notifier settings also read ``PYORCHESTRATE_NOTIFY_CONFIG_FILE``: a
        file named there fills what ``[notify]`` leaves out, which is rarely meant."""
        named = os.environ.get(_NOTIFY_CONFIG_FILE)
        if not named:
            return []
        return [
            (
                "notify",
                f"{_NOTIFY_CONFIG_FILE} is set ({named}): that file fills in what "
                "[notify] leaves out",
            )
        ]

    def command_warnings(
        self, agents: Iterable[AgentDefinition]
    ) -> list[tuple[str, str]]:
        """Commands whose program is not found or not executable (they would fail
        with AGENT_ERROR ``reason=spawn`` when started)."""
        found: list[tuple[str, str]] = []
        for agent in agents:
            config = agent.config
            if not isinstance(config, CommandConfig) or config.shell:
                continue
            argv = config.command
            if isinstance(argv, str):
                argv = _split(argv)
            if not argv:
                continue
            program = argv[0]
            cwd = Path(config.cwd).expanduser() if config.cwd else Path.cwd()
            if not cwd.is_dir():
                found.append(
                    (f"agents.{agent.name}.cwd", f"{str(cwd)!r}: no such directory")
                )
                continue
            where = f"agents.{agent.name}.command"
            if "/" in program:
                target = Path(program).expanduser()
                target = target if target.is_absolute() else cwd / target
                if not target.is_file():
                    found.append((where, f"{program!r}: no such file"))
                elif not os.access(target, os.X_OK):
                    found.append((where, f"{program!r} is not executable"))
                continue
            search = config.env.get("PATH") or os.environ.get("PATH", os.defpath)
            if shutil.which(program, path=search) is None:
                found.append((where, f"{program!r} is not found on PATH"))
        return found


def _split(command: str) -> list[str]:
    import shlex

    try:
        return shlex.split(command)
    except ValueError:
        return []


def _join_argv(argv: list[str]) -> str:
    import shlex

    return shlex.join(argv)


def _at(path: str, loc: str) -> str:
    if not loc:
        return path
    if loc.startswith("["):
        return f"{path}{loc}"
    return f"{path}.{loc}" if path else loc


def _kind(value: object) -> str:
    return {str: "a string", int: "a number", float: "a number", bool: "a bool"}.get(
        type(value), type(value).__name__
    )
