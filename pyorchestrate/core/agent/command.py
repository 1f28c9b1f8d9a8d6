"""Any command as a supervised agent: :class:`CommandAgent`.

``register_agent(CommandAgent, "backup", command=["restic", "backup", "/data"])`` runs
the program under the orchestrator's supervision like any other agent: restart
policies, dependencies, the watchdog, events and alerts all work the same.

No Python runs per command. The orchestrator spawns the program itself
(``subprocess.Popen``: ``fork`` + ``exec`` in C, no ``preexec_fn``) and the
orchestrator-side :class:`CommandAgent` object speaks for it: it sends the messages a
Python agent sends about itself (START, READY, HEARTBEAT, ERROR, CLOSE) over its link,
and its sentinel is a pidfd of the program, which the router watches with every other
agent's. What a command prints goes through the same output capture as a Python
process agent's (``pyorchestrate.core.utilities.output``). Linux only: a pidfd per
program needs Linux 5.3 or later.

The life of one run:

* **start**: the program starts with stdin ``/dev/null``, stdout and stderr on the
  orchestrator's pipes, in a process group of its own (``setpgid`` in the child, as
  ``subprocess`` does it), in ``cwd``, with ``env`` over the orchestrator's environment
  (or alone, with ``clean_env=True``). START follows at once; a program that cannot
  start (not found, not executable, a bad ``cwd``) raises :class:`CommandSpawnError`,
  which the orchestrator reports as AGENT_ERROR ``reason="spawn"``, and the agent is
  FAILED without a restart (a restart would fail the same way).
* **READY** at once, or ``ready_after`` seconds after START if it is still alive then
  (supervisord's ``startsecs``), or when a line of its output matches
  ``ready_pattern``, whichever of the two set comes first.
* **heartbeats**: with ``heartbeat_on_output=True`` its output lines count as
  heartbeats for the watchdog (``supervision.heartbeat_timeout``), at most one
  AGENT_HEARTBEAT per ``heartbeat_interval`` (default: a third of the timeout).
* **stop**: ``stop_signal`` (default SIGTERM) to its process group at once; after
  ``supervision.stop_timeout``, SIGKILL to the group. Ended by its ``stop_signal``
  (or exiting with ``128 + stop_signal``, as shells do) after a stop, it ended as
  asked: no AGENT_ERROR.
* **end**: an exit code in ``success_exit_codes`` is a success; another exit code is
  AGENT_ERROR ``reason="exit_code"``; death by a signal nobody asked for is AGENT_ERROR
  ``reason="killed"`` naming the signal. Each carries the last lines of its output.
  Whatever is left of its process group is SIGKILLed when it ends: a daemon it forked
  goes with it. A process that leaves the group (``setsid``, ``setpgid``) escapes, as
  it does from every process supervisor short of cgroups.

If the orchestrator itself dies, even by SIGKILL, its commands end too: one small
``sh`` per orchestrator (:class:`ProcessGroupGuard`, started with the first command)
holds the list of the commands' process groups and a pipe from the orchestrator;
when the pipe closes with groups still listed, it sends them SIGTERM, then SIGKILL
one second later (:data:`~pyorchestrate.core.agent.flavours.ORPHAN_GRACE`, as
for Python process agents). ``PR_SET_PDEATHSIG`` would need a ``preexec_fn`` (unsafe
in a threaded process) and fires when the *thread* that spawned the child ends, which
can be any thread that called ``start_agent``.

Secrets. ``env`` values whose key matches :data:`SECRET_ENV_KEY` (``TOKEN``,
``SECRET``, ``PASSWORD``, ``KEY``) are shown as ``****`` everywhere the config is
shown: its ``repr``, ``to_dict()``, ``status NAME``, ``Orchestrator.report()``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from pydantic import (
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_serializer,
    field_validator,
    model_validator,
)

from ..errors import PyOrchestrateError
from ..events import AgentEvent
from ..utilities.fdwait import readable
from ..utilities.messaging import MessageChannel
from .base import AgentConfig, BaseAgent
from .flags import ControlEvents, Flavour, StateEvents
from .flavours import ORPHAN_GRACE, raise_open_files_limit
from .plugins import AgentPlugin
from .status import AgentTerminationStatus

__all__ = [
    "SECRET_ENV_KEY",
    "CommandAgent",
    "CommandConfig",
    "CommandSpawnError",
    "ProcessGroupGuard",
    "mask_env",
]

logger = logging.getLogger("pyorchestrate.command")

SECRET_ENV_KEY = re.compile(r"TOKEN|SECRET|PASSWORD|KEY", re.IGNORECASE)
"""An ``env`` key this matches (anywhere in it) has its value masked when shown."""

MASK = "****"

MIN_BEAT_INTERVAL = 0.05
"""Seconds between two heartbeats from output lines, at least: a program printing
100,000 lines a second sends no more than 20 heartbeats a second."""


def mask_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` with the values of secret-looking keys replaced by ``****``."""
    return {k: MASK if SECRET_ENV_KEY.search(k) else v for k, v in env.items()}


class CommandSpawnError(PyOrchestrateError, OSError):
    """The program could not be started (not found, not executable, a bad ``cwd``).

    Attributes:
        program: what was to be run.
        reason: ``"spawn"``, the ``reason`` of the AGENT_ERROR it becomes.
    """

    reason: ClassVar[str] = "spawn"

    def __init__(self, program: str, error: OSError) -> None:
        where = f" ({error.filename})" if error.filename not in (None, program) else ""
        self.message = f"cannot run {program!r}: {error.strerror or error}{where}"
        super().__init__(error.errno, self.message)
        self.program = program

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------------- config

_SIGNALS = {s.name: s for s in signal.Signals}


def _command_type_error(value: object) -> ValueError:
    return ValueError(
        f"must be a list of strings or a string, not {type(value).__name__} ({value!r})"
    )


class CommandConfig(AgentConfig):
    """What to run and how. Every field can also be given as a keyword argument of
    ``register_agent`` (``command=...``, ``cwd=...``).

    A string ``command`` is split like a shell would (``shlex.split``) but run
    without one; ``shell=True`` runs it with ``/bin/sh -c`` instead (then a
    program that is not found is the shell's exit code 127, not a spawn error).
    """

    command: list[str] | str = Field(
        description="the program and its arguments (a list, or a string split by shlex)"
    )
    cwd: str | None = Field(
        default=None, description="working directory (default: the orchestrator's)"
    )
    env: dict[StrictStr, StrictStr] = Field(
        default_factory=dict,
        description="environment variables, over the orchestrator's (see clean_env)",
    )
    clean_env: StrictBool = Field(
        default=False, description="run with env alone, not the orchestrator's"
    )
    shell: StrictBool = Field(
        default=False, description="run command (one string) with /bin/sh -c"
    )
    success_exit_codes: frozenset[StrictInt] | None = Field(
        default=None,
        description="exit codes that are a success (sets supervision's); None = {0}",
    )
    stop_signal: signal.Signals = Field(
        default=signal.SIGTERM,
        description="the signal a stop sends to its process group (name or number)",
    )
    ready_after: float | None = Field(
        default=None,
        gt=0,
        strict=True,
        description="READY once alive this long after START (s); None = at once",
    )
    ready_pattern: str | None = Field(
        default=None, description="READY when an output line matches this regex"
    )
    heartbeat_on_output: StrictBool = Field(
        default=False, description="each output line counts as a watchdog heartbeat"
    )

    @field_validator("command", mode="before")
    @classmethod
    def _check_command(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("must not be empty")
            return value
        if isinstance(value, list | tuple):
            if not value:
                raise ValueError("must not be empty")
            for index, item in enumerate(value):
                if not isinstance(item, str | os.PathLike):
                    raise ValueError(
                        f"item {index} must be a string, not {type(item).__name__}"
                    )
            items = [os.fspath(item) for item in value]
            if not items[0]:
                raise ValueError("the program (item 0) must not be empty")
            return items
        raise _command_type_error(value)

    @field_validator("cwd", mode="before")
    @classmethod
    def _path_to_str(cls, value: object) -> object:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("env")
    @classmethod
    def _check_env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key or "=" in key or "\0" in key:
                raise ValueError(f"{key!r} is not a valid variable name")
        for key, item in value.items():
            if "\0" in item:
                raise ValueError(f"{key}: must not hold a NUL character")
        return value

    @field_validator("stop_signal", mode="before")
    @classmethod
    def _signal_by_name(cls, value: object) -> object:
        if isinstance(value, str):
            name = value.strip().upper()
            name = name if name.startswith("SIG") else f"SIG{name}"
            if name not in _SIGNALS:
                raise ValueError(f"no signal named {value!r}")
            return _SIGNALS[name]
        if isinstance(value, bool):
            raise ValueError(f"must be a signal name or number, not a bool ({value})")
        return value

    @field_validator("ready_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CommandConfig:
        if isinstance(self.command, str) and not self.shell:
            try:
                argv = shlex.split(self.command)
            except ValueError as exc:
                raise ValueError(f"command: cannot be split ({exc})") from None
            if not argv:
                raise ValueError("command: must not be empty")
        if isinstance(self.command, list) and self.shell:
            raise ValueError(
                "command: with shell=True give one string (the shell's command line), "
                "not a list"
            )
        codes = self.success_exit_codes
        if codes is not None and codes != self.supervision.success_exit_codes:
            # The supervisor reads supervision's: keep the two the same.
            self.__dict__["supervision"] = self.supervision.model_copy(
                update={"success_exit_codes": codes}
            )
        if self.supervision.heartbeat_timeout is not None and not (
            self.heartbeat_on_output
        ):
            raise ValueError(
                "supervision.heartbeat_timeout: a command beats only by its output: "
                "set heartbeat_on_output=True (or drop the watchdog)"
            )
        return self

    @field_serializer("env", when_used="json")
    def _masked_env(self, env: dict[str, str]) -> dict[str, str]:
        return mask_env(env)

    @field_serializer("stop_signal", when_used="json")
    def _signal_name(self, value: signal.Signals) -> str:
        return value.name

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-safe data, ``env`` masked, with ``command_line`` (the
        command as one line) first: what ``status NAME`` shows."""
        return {"command_line": self.command_line, **super().to_dict()}

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for key, value in super().__repr_args__():
            yield key, mask_env(value) if key == "env" else value

    @property
    def argv(self) -> list[str]:
        """What is executed: the program and its arguments."""
        if self.shell:
            return ["/bin/sh", "-c", str(self.command)]
        if isinstance(self.command, str):
            return shlex.split(self.command)
        return list(self.command)

    @property
    def command_line(self) -> str:
        """The command as one line (what ``ps`` of the system would show)."""
        if isinstance(self.command, str):
            return self.command
        return shlex.join(self.command)

    @property
    def program(self) -> str:
        """The program that is executed (``/bin/sh`` with ``shell=True``)."""
        return self.argv[0]

    def environment(self) -> dict[str, str] | None:
        """The program's environment (``None``: the orchestrator's, unchanged)."""
        if not self.env and not self.clean_env:
            return None
        base = {} if self.clean_env else dict(os.environ)
        return {**base, **self.env}


_CONFIG_KEYWORDS = frozenset(
    name for name in CommandConfig.model_fields if name not in AgentConfig.model_fields
)


# ---------------------------------------------------------------------- the guard

_GUARD_SCRIPT = """
trap '' INT TERM HUP QUIT
groups=" "
while IFS= read -r line; do
  case $line in
    +*) groups="$groups${line#+} " ;;
    -*) g=${line#-}
        case $groups in *" $g "*) groups="${groups%%" $g "*} ${groups#*" $g "}";; esac ;;
  esac
done
[ -z "${groups## }" ] && exit 0
echo "pyorchestrate: orchestrator gone: ending command groups$groups" >&2
for g in $groups; do kill -s TERM -- "-$g" 2>/dev/null; done
sleep %(grace)s
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
exit 0
"""


class ProcessGroupGuard:
    """Ends the commands' process groups if the orchestrator dies (see the module).

    One ``sh`` per orchestrator, started with the first :meth:`add`. It reads
    ``+PGID`` / ``-PGID`` lines from a pipe whose write end only the orchestrator
    holds; at the pipe's end, it sends SIGTERM, then SIGKILL ``ORPHAN_GRACE`` seconds
    later, to the groups still listed. :meth:`close` (at the orchestrator's shutdown,
    once every command has ended) closes the pipe with nothing listed: the guard just
    exits and is reaped.

    Args:
        name: the orchestrator's name, for the logs.
    """

    def __init__(self, name: str = "orchestrator") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._groups: set[int] = set()
        self._closed = False
        self._broken = False

    def add(self, pgid: int) -> None:
        """List ``pgid``: it is ended if the orchestrator dies."""
        with self._lock:
            self._groups.add(pgid)
            self._send(f"+{pgid}\n")

    def discard(self, pgid: int) -> None:
        """Take ``pgid`` off the list (its command ended: the id may be reused)."""
        with self._lock:
            if pgid in self._groups:
                self._groups.discard(pgid)
                self._send(f"-{pgid}\n")

    def _send(self, line: str) -> None:
        """Under the lock: write ``line`` to the guard, starting it (again) if need
        be: a guard that died (someone killed it) is replaced, with every group."""
        if self._closed or self._broken:
            return
        if self._proc is None:
            self._proc = self._start()
            if self._proc is None:
                return
            line = "".join(f"+{pgid}\n" for pgid in sorted(self._groups))
        try:
            self._write(self._proc, line)
        except OSError as exc:  # it died, or stopped reading (a full pipe)
            old, self._proc = self._proc, None
            with contextlib.suppress(OSError):
                old.kill()
            if old.stdin is not None:
                with contextlib.suppress(OSError):
                    old.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                old.wait(1.0)
            logger.warning(
                "orchestrator %r: the guard that ends commands if it dies failed "
                "(%s): starting another",
                self._name,
                exc,
            )
            self._proc = self._start()
            if self._proc is None:
                return
            try:
                self._write(
                    self._proc, "".join(f"+{pgid}\n" for pgid in sorted(self._groups))
                )
            except OSError as again:
                self._broken = True
                logger.error(
                    "orchestrator %r: the guard that ends commands if it dies is "
                    "gone (%s); commands outlive a crash of this process",
                    self._name,
                    again,
                )

    @staticmethod
    def _write(proc: subprocess.Popen[bytes], data: str) -> None:
        """Write it all, or raise ``OSError`` (never waits: a full pipe raises)."""
        assert proc.stdin is not None
        view = memoryview(data.encode("ascii"))
        while view:
            view = view[os.write(proc.stdin.fileno(), view) :]

    def _start(self) -> subprocess.Popen[bytes] | None:
        script = _GUARD_SCRIPT % {"grace": f"{ORPHAN_GRACE:g}"}
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", script, "pyorchestrate-guard"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                close_fds=True,
                process_group=0,  # Ctrl+C in a terminal does not reach it
            )
        except OSError as exc:
            self._broken = True
            logger.error(
                "orchestrator %r: cannot start the guard that ends commands if it "
                "dies (%s); commands outlive a crash of this process",
                self._name,
                exc,
            )
            return None
        assert proc.stdin is not None
        os.set_blocking(proc.stdin.fileno(), False)  # never wait on it
        return proc

    @property
    def pid(self) -> int | None:
        """The guard's pid, once started."""
        proc = self._proc
        return proc.pid if proc is not None else None

    def close(self, timeout: float = 2.0) -> bool:
        """Close the pipe and reap the guard; return whether it ended. Idempotent.

        Commands still listed (abandoned) are ended by it as if we had died.
        """
        with self._lock:
            self._closed = True
            proc = self._proc
        if proc is None:
            return True
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout + ORPHAN_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return False
        return True


# ---------------------------------------------------------------------- the agent


class CommandAgent(BaseAgent):
    """A program run as an agent, with no Python of its own (see the module).

    Register it with the command as a keyword argument or in its config::

        orchestrator.register_agent(CommandAgent, "backup", command=["restic", "backup"])
        orchestrator.register_agent(
            CommandAgent, "web", CommandAgent.Config(command="node server.js",
            ready_pattern="listening on", supervision={"restart": "on-failure"}),
        )

    A bad ``command``, ``env`` or other field is a ``ConfigError`` naming the field,
    at registration. It is a process agent for everything else (``ps``, ``status``,
    events, ``output_tail``).
    """

    Config: ClassVar[type[AgentConfig]] = CommandConfig
    flavour: ClassVar[Flavour | None] = "process"
    config_keywords: ClassVar[frozenset[str]] = _CONFIG_KEYWORDS
    stops_by_signal: ClassVar[bool] = True
    """A stop is its ``stop_signal``: at the stop deadline the stopper goes straight
    to SIGKILL."""

    _popen: subprocess.Popen[bytes] | None = None
    _pidfd: int | None = None
    _guard: ProcessGroupGuard | None = None
    _output_w: tuple[int, int] | None = None

    def __init__(
        self,
        name: str | None = None,
        config: AgentConfig | Mapping[str, Any] | None = None,
        plugin: AgentPlugin | None = None,
        control_events: ControlEvents | None = None,
        state_events: StateEvents | None = None,
        msg_channel: MessageChannel | None = None,
        generation_id: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name,
            config,
            plugin,
            control_events,
            state_events,
            msg_channel,
            generation_id,
            **kwargs,
        )
        # Nothing crosses a process boundary here: thread events, not one eventfd
        # each (six descriptors per command saved), unless the caller gave its own.
        if control_events is None:
            self.control_events = ControlEvents().filled("thread")
        if state_events is None:
            self.state_events = StateEvents().filled("thread")
        self._proc_lock = threading.RLock()
        """Held while the process is signalled or reaped (a reaped pid can be
        reused: no signal may go out after it)."""
        self._report_lock = threading.Lock()
        self._started = False
        self._ready = False
        self._matched_early = False
        self._exit: int | None = None
        self._reaped = False
        self._stop_sent = False
        """Whether we sent ``stop_signal``: set before the signal goes, so an end by it
        is known as asked even before ``stop()`` sets the stop event."""
        self._end_reported = False
        self._pattern = (
            re.compile(self.command_config.ready_pattern)
            if self.command_config.ready_pattern is not None
            else None
        )

    @property
    def command_config(self) -> CommandConfig:
        """The config, as a :class:`CommandConfig`."""
        config = self.config
        assert isinstance(config, CommandConfig)
        return config

    def execute(self) -> None:
        """Not used: the program is the agent's work (nothing runs ``run()``)."""

    # ------------------------------------------------------------ orchestrator side
    def use_guard(self, guard: ProcessGroupGuard) -> None:
        """End the program with the orchestrator: list its group with ``guard``."""
        self._guard = guard

    def capture_output(self, stdout_fd: int, stderr_fd: int) -> None:
        """The program's stdout and stderr: these pipes' write ends (the caller
        closes its copies once :meth:`start` returned)."""
        self._output_w = (stdout_fd, stderr_fd)

    def start(self) -> None:
        """Spawn the program, then report START (and READY unless it waits for it).

        Raises:
            CommandSpawnError: the program could not be started.
            RuntimeError: already started.
        """
        if self._popen is not None:
            raise RuntimeError(f"agent {self.name!r} can only be started once")
        _raise_limit_once()
        config = self.command_config
        argv = config.argv
        out, err = self._output_w if self._output_w is not None else (None, None)
        self._output_w = None
        self.start_time = time.time()
        try:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=config.cwd,
                env=config.environment(),
                close_fds=True,
                process_group=0,
            )
        except OSError as exc:
            raise CommandSpawnError(argv[0], exc) from exc
        try:
            pidfd = os.pidfd_open(popen.pid)
        except (AttributeError, OSError) as exc:  # pragma: no cover - Linux < 5.3
            with contextlib.suppress(OSError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()
            raise CommandSpawnError(
                argv[0], OSError(getattr(exc, "errno", None), f"no pidfd here ({exc})")
            ) from exc
        self._popen = popen
        self._pidfd = pidfd
        weakref.finalize(self, _close_fd, pidfd)
        if self._guard is not None:
            self._guard.add(popen.pid)
        logger.debug(
            "agent %r: started %s (pid %d)",
            self.name,
            config.command_line,
            popen.pid,
            extra={"agent": self.name},
        )
        self._send_status(AgentEvent.START)
        self._set(self.state_events.start_event)
        with self._report_lock:
            self._started = True
            ready_now = self._matched_early or (
                self._pattern is None and config.ready_after is None
            )
        if ready_now:
            self._report_ready()

    def _send_status(self, event: AgentEvent, **extra: Any) -> None:
        # The program's pid, not ours: the orchestrator records the pid reported.
        super()._send_status(event, **{"pid": self.pid, **extra})

    def _report_ready(self) -> None:
        with self._report_lock:
            if self._ready or self._exit is not None:
                return
            self._ready = True
        self._send_status(AgentEvent.READY)
        self._set(self.state_events.ready_event)

    def on_output_line(self, stream: str, line: str) -> None:
        """A line the program wrote (on the output reader thread; never blocks long):
        READY on ``ready_pattern``, a heartbeat with ``heartbeat_on_output``."""
        pattern = self._pattern
        if pattern is not None and not self._ready and pattern.search(line):
            with self._report_lock:
                early = not self._started
                if early:
                    self._matched_early = True
            if not early:
                self._report_ready()
        if self.command_config.heartbeat_on_output and self._ready:
            interval = self.beat_interval
            now = time.monotonic()
            if interval is not None and now - self._last_beat >= max(
                interval, MIN_BEAT_INTERVAL
            ):
                self.heartbeat()

    def check_timers(self, now: float, started: float) -> float | None:
        """``ready_after``: report READY once due; return when it is due, or ``None``.

        Called on the router thread; ``now`` and ``started`` (when the program was
        started) are read on the orchestrator's clock.
        """
        after = self.command_config.ready_after
        if after is None or self._ready or not self._started or self._exit is not None:
            return None
        if now < started + after:
            return started + after
        if self.is_alive():
            self._report_ready()
        return None

    def report_exit(self) -> None:
        """The pidfd fired: read the exit status (the process stays a zombie, so its
        group id is not reused until :meth:`join` reaps it) and report the end as a
        Python agent would: ERROR for a failed exit code, then CLOSE. A death by a
        signal nobody asked for is left for the orchestrator to report."""
        with self._proc_lock:
            if self._end_reported or self._popen is None:
                return
            code = self._exit if self._exit is not None else self._peek_exit()
            if code is None:
                return
            self._exit = code
            self._end_reported = True
        config = self.command_config
        stop_signal = int(config.stop_signal)
        asked = (self._stop_sent or self.stop_requested) and code in (
            -stop_signal,
            128 + stop_signal,
        )
        status = AgentTerminationStatus.SUCCESS
        if code < 0 and not asked:
            # Like a Python agent killed by it: no CLOSE, the orchestrator reports it.
            self._close_link()
            return
        if asked:
            status = AgentTerminationStatus.WARNING  # ended by the signal, as asked
        codes = self.config.supervision.success_exit_codes
        if code >= 0 and code not in codes and not asked:
            status = AgentTerminationStatus.ERROR
            self.termination_status = status
            self._send_status(
                AgentEvent.ERROR,
                error=f"exited with code {code}",
                reason="exit_code",
                error_type=None,
                exit_code=code,
            )
        self._send_status(AgentEvent.CLOSE, termination_status=status.value)
        self._set(self.state_events.close_event)
        self._close_link()

    def _peek_exit(self) -> int | None:
        assert self._popen is not None
        try:
            info = os.waitid(
                os.P_PID, self._popen.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG
            )
        except ChildProcessError:  # already reaped
            return self._popen.returncode
        if info is None:
            return None
        if info.si_code == os.CLD_EXITED:
            return int(info.si_status)
        return -int(info.si_status)

    def _close_link(self) -> None:
        if self._link is not None:
            self._link.close()

    # ------------------------------------------------------------ process handling
    def _ended(self, timeout: float | None = 0) -> bool:
        if self._popen is None:
            return False
        if self._reaped:
            return True
        assert self._pidfd is not None
        return readable(self._pidfd, timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` seconds for the program to end, then reap it."""
        popen = self._popen
        if popen is None or not self._ended(timeout):
            return
        with self._proc_lock:
            if self._reaped:
                return
            if self._guard is not None:
                self._guard.discard(popen.pid)
            code = popen.wait()
            self._reaped = True
            if self._exit is None:
                self._exit = code

    def is_alive(self) -> bool:
        """Whether the program is running."""
        return self._popen is not None and not self._ended()

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the program's process group (nothing once it is reaped)."""
        with self._proc_lock:
            popen = self._popen
            if popen is None or self._reaped:
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, sig)

    def on_stop(self) -> None:
        """A stop: ``stop_signal`` to the program's group (SIGKILL follows after
        ``stop_timeout``). Extend with ``super().on_stop()``."""
        self.terminate()

    def terminate(self) -> None:
        """``stop_signal`` to the group (a stop, or a hung command: the watchdog, a
        readiness timeout)."""
        self._stop_sent = True
        self.signal_group(self.command_config.stop_signal)

    def kill(self) -> None:
        """SIGKILL to the group."""
        self.signal_group(signal.SIGKILL)

    def kill_leftovers(self) -> None:
        """SIGKILL what is left of the group once the program ended (its leader is
        not reaped yet, so the group id is still its own)."""
        self.signal_group(signal.SIGKILL)

    @property
    def pid(self) -> int | None:
        """The program's pid once started."""
        return self._popen.pid if self._popen is not None else None

    @property
    def exitcode(self) -> int | None:
        """The exit code (negative for a signal), ``None`` while it runs."""
        if self._exit is None and self._ended():
            with self._proc_lock:
                if self._exit is None and not self._reaped:
                    self._exit = self._peek_exit()
        return self._exit

    @property
    def exit_status_lost(self) -> bool:
        """Never: the orchestrator is the program's parent."""
        return False

    @property
    def sentinel(self) -> int | None:
        """A pidfd of the program: readable once it has ended."""
        return self._pidfd

    def __repr__(self) -> str:
        return f"<CommandAgent {self.name!r} {self.command_config.command_line!r}>"


_limit = threading.Lock()
_limit_raised: list[int] = []


def _raise_limit_once() -> None:
    """Raise the soft limit of open files, once (five descriptors per command: see
    :func:`~pyorchestrate.core.agent.flavours.raise_open_files_limit`)."""
    with _limit:
        if not _limit_raised:
            _limit_raised.append(raise_open_files_limit())


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
