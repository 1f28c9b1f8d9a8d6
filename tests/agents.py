"""The agents of the tests, in one module, at module level so process agents unpickle
in the child (forkserver and spawn alike).

``agent(kind, flavour)`` returns the class of a kind for ``"thread"`` or ``"process"``.
Agents report what they do through ``send_message`` (read it from a ``MessageChannel``
passed as ``msg_channel``): DATA messages such as ``{"step": ...}`` or ``{"cycle": n}``,
with the lifecycle STATUS messages on the same channel, in order. The helpers at the
end read those messages.

Keyword arguments an agent reads are attributes of the agent. Some are declared on the
class with a default (``SlowThread(duration=…)``, ``StubbornThread(release=…)``,
``ExitProcess(code=…)``); the others are deliberately not (``gate``, ``echo``,
``marker``, the ``HygieneProcess`` keywords).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from pyorchestrate.core.agent import (
    AgentConfig,
    BaseProcessAgent,
    BaseThreadAgent,
    LoopingConfig,
    LoopingProcessAgent,
    LoopingThreadAgent,
    OneShotProcessAgent,
    OneShotThreadAgent,
    PeriodicConfig,
    PeriodicProcessAgent,
    PeriodicThreadAgent,
    PoolProcessAgent,
    PoolThreadAgent,
)
from pyorchestrate.core.config import ValidationResult, ValidationSeverity
from pyorchestrate.core.errors import NonRecoverableException, RecoverableException
from pyorchestrate.core.orchestrator import Orchestrator, OrchestratorConfig
from pyorchestrate.core.utilities.messaging import (
    MessageChannel,
    MessageType,
    ServiceMessage,
)

# ---------------------------------------------------------------- simple kinds


class _Forever:
    """Loops until stopped, 10 ms a cycle."""

    def cycle(self) -> None:
        self.wait(0.01)  # type: ignore[attr-defined]


class ForeverThread(_Forever, LoopingThreadAgent):
    pass


class ForeverProcess(_Forever, LoopingProcessAgent):
    pass


class _Counter:
    """Sends ``{"cycle": n}`` each cycle."""

    def cycle(self) -> None:
        self.send_message({"cycle": self.cycles_done})  # type: ignore[attr-defined]


class CounterThread(_Counter, LoopingThreadAgent):
    pass


class CounterProcess(_Counter, LoopingProcessAgent):
    pass


class _Quick:
    """Returns at once."""

    def task(self) -> Any:
        return 42


class QuickThread(_Quick, OneShotThreadAgent):
    pass


class QuickProcess(_Quick, OneShotProcessAgent):
    pass


class _Slow:
    """Sleeps ``duration`` seconds (kwarg, default 0.3), waking on stop."""

    duration: float = 0.3

    def task(self) -> Any:
        self.wait(self.duration)  # type: ignore[attr-defined]


class SlowThread(_Slow, OneShotThreadAgent):
    pass


class SlowProcess(_Slow, OneShotProcessAgent):
    pass


class _Boom:
    """Raises ValueError("boom") in its task."""

    def task(self) -> Any:
        raise ValueError("boom")


class BoomThread(_Boom, OneShotThreadAgent):
    pass


class BoomProcess(_Boom, OneShotProcessAgent):
    pass


class _SetupBoom:
    """Raises in setup(); execute never runs."""

    def setup(self) -> None:
        self.send_message({"setup": True})  # type: ignore[attr-defined]
        raise RuntimeError("setup failed")

    def execute(self) -> None:
        self.send_message({"execute": True})  # type: ignore[attr-defined]

    def on_close(self) -> None:
        self.send_message({"on_close": True})  # type: ignore[attr-defined]


class SetupBoomThread(_SetupBoom, BaseThreadAgent):
    pass


class SetupBoomProcess(_SetupBoom, BaseProcessAgent):
    pass


class _Recovering:
    """Raises Recoverable on cycles 0 and 1, NonRecoverable on cycle 3."""

    def cycle(self) -> None:
        n = self.cycles_done  # type: ignore[attr-defined]
        self.send_message({"cycle": n})  # type: ignore[attr-defined]
        if n in (0, 1):
            raise RecoverableException(f"hiccup {n}")
        if n == 3:
            raise NonRecoverableException("done")


class RecoveringThread(_Recovering, LoopingThreadAgent):
    pass


class RecoveringProcess(_Recovering, LoopingProcessAgent):
    pass


class _Ticker:
    """Periodic: sends the monotonic time of each run."""

    def runner(self) -> None:
        self.send_message({"tick": time.monotonic()})  # type: ignore[attr-defined]


class TickerThread(_Ticker, PeriodicThreadAgent):
    pass


class TickerProcess(_Ticker, PeriodicProcessAgent):
    pass


class _BadConfig:
    """Its Config's check() reports an ERROR on field ``threshold``."""

    def cycle(self) -> None:
        self.send_message({"cycle": self.cycles_done})  # type: ignore[attr-defined]


class BadConfigThread(_BadConfig, LoopingThreadAgent):
    class Config(LoopingThreadAgent.Config):
        threshold: int = 5

        def check(self) -> list[ValidationResult]:
            results = super().check()
            if self.threshold > 3:
                results.append(
                    ValidationResult(field="threshold", message="must be at most 3")
                )
            return results


class BadConfigProcess(_BadConfig, LoopingProcessAgent):
    Config = BadConfigThread.Config


class _WarnConfig:
    def cycle(self) -> None:
        raise NonRecoverableException("one cycle is enough")


class WarnConfigThread(_WarnConfig, LoopingThreadAgent):
    class Config(LoopingThreadAgent.Config):
        def check(self) -> list[ValidationResult]:
            return [
                ValidationResult(
                    field="limit",
                    message="just a warning",
                    severity=ValidationSeverity.WARNING,
                )
            ]


class WarnConfigProcess(_WarnConfig, LoopingProcessAgent):
    Config = WarnConfigThread.Config


class StubbornThread(BaseThreadAgent):
    """Ignores stop; ends only when the ``release`` event (kwarg) is set."""

    release: Any = None

    def execute(self) -> None:
        self.release.wait(30)


class StubbornProcess(BaseProcessAgent):
    """Ignores stop and SIGTERM; only SIGKILL ends it (or 30 s)."""

    def execute(self) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.05)


class TermCleanupProcess(BaseProcessAgent):
    """Ignores the stop event but ends on SIGTERM, running on_close."""

    def execute(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.05)

    def on_close(self) -> None:
        self.send_message({"on_close": True})


class ExitProcess(OneShotProcessAgent):
    """Ends its process abruptly with ``os._exit(code)`` (kwarg ``code``, default 3)."""

    code: int = 3

    def task(self) -> Any:
        os._exit(self.code)


class SleepForeverProcess(OneShotProcessAgent):
    """Sleeps in a plain loop (ready to be killed from outside)."""

    def task(self) -> Any:
        while True:
            time.sleep(0.05)


# ----------------------------------------------------------------- supervision


class _Hanging:
    """Loops like ``forever`` once the ``gate`` event (kwarg) is set; until then its
    cycle blocks on the gate and ignores stop (it stops beating: a hang)."""

    gate: Any = None

    def cycle(self) -> None:
        if not self.gate.is_set():
            self.gate.wait(30)
        self.wait(0.01)  # type: ignore[attr-defined]


class HangingThread(_Hanging, LoopingThreadAgent):
    pass


class HangingProcess(_Hanging, LoopingProcessAgent):
    pass


class _Beating:
    """A plain agent that calls ``heartbeat()`` itself every ``beat_every`` seconds."""

    beat_every: float = 0.02

    def execute(self) -> None:
        while not self.wait(self.beat_every):  # type: ignore[attr-defined]
            self.heartbeat()  # type: ignore[attr-defined]


class BeatingThread(_Beating, BaseThreadAgent):
    pass


class BeatingProcess(_Beating, BaseProcessAgent):
    pass


class _StopLog:
    """Loops until stopped; its ``on_stop`` (run in the orchestrator's process, for
    both flavours) appends ``(name, time.monotonic_ns())`` to ``stop_log`` (kwarg)."""

    stop_log: Any = None

    def cycle(self) -> None:
        self.wait(0.01)  # type: ignore[attr-defined]

    def on_stop(self) -> None:
        self.stop_log.append((self.name, time.monotonic_ns()))  # type: ignore[attr-defined]


class StopLogThread(_StopLog, LoopingThreadAgent):
    pass


class StopLogProcess(_StopLog, LoopingProcessAgent):
    pass


# ----------------------------------------------- probes and scripted agents


class ProbeConfig(AgentConfig):
    """``threshold > 3`` trips a ``check()`` rule of ``threshold_severity``.

    ``fail_in`` names the hook that raises: ``setup``, ``execute``, ``task`` or
    ``on_close``.
    """

    threshold: int = 0
    threshold_severity: ValidationSeverity = ValidationSeverity.ERROR
    fail_in: str | None = None

    def check(self) -> list[ValidationResult]:
        results = super().check()
        if self.threshold > 3:
            results.append(
                ValidationResult(
                    field="threshold",
                    message="must be at most 3",
                    severity=self.threshold_severity,
                )
            )
        return results


class _Probe:
    """Reports every hook it runs, with the state of its lifecycle events."""

    Config = ProbeConfig

    def _flags(self) -> dict[str, bool]:
        se = self.state_events  # type: ignore[attr-defined]
        return {
            "start": se.start_event.is_set(),
            "ready": se.ready_event.is_set(),
            "close": se.close_event.is_set(),
        }

    def _step(self, step: str) -> None:
        self.send_message({"step": step, **self._flags()})  # type: ignore[attr-defined]

    def setup(self) -> None:
        self._step("setup")
        super().setup()  # type: ignore[misc]
        if self.config.fail_in == "setup":  # type: ignore[attr-defined]
            raise RuntimeError("setup failed")

    def on_close(self) -> None:
        self._step("on_close")
        if self.config.fail_in == "on_close":  # type: ignore[attr-defined]
            raise RuntimeError("on_close failed")

    def on_stop(self) -> None:
        # Runs in the caller of stop(): remember where, and whether stop was set yet.
        self.stopped_from = (  # type: ignore[attr-defined]
            os.getpid(),
            threading.get_ident(),
            self.stop_event.is_set(),  # type: ignore[attr-defined]
        )


class _BaseProbe(_Probe):
    def execute(self) -> None:
        super().execute()  # type: ignore[misc]
        self._step("execute")
        if self.config.fail_in == "execute":  # type: ignore[attr-defined]
            raise ValueError("boom")


class ProbeThread(_BaseProbe, BaseThreadAgent):
    pass


class ProbeProcess(_BaseProbe, BaseProcessAgent):
    pass


class _OneShotProbe(_Probe):
    def task(self) -> Any:
        self._step("task")
        if self.config.fail_in == "task":  # type: ignore[attr-defined]
            raise ValueError("task failed")
        return 7


class OneShotProbeThread(_OneShotProbe, OneShotThreadAgent):
    pass


class OneShotProbeProcess(_OneShotProbe, OneShotProcessAgent):
    pass


class _Scripted:
    """Looping: sends ``{"cycle": n}``, then acts on ``config.script[n]`` if any.

    Actions: ``recoverable``, ``nonrecoverable``, ``error`` (ValueError), ``stop``.
    """

    Config = LoopingConfig

    def cycle(self) -> None:
        n = self.cycles_done  # type: ignore[attr-defined]
        self.send_message({"cycle": n})  # type: ignore[attr-defined]
        action = (getattr(self.config, "script", None) or {}).get(n)  # type: ignore[attr-defined]
        if action == "recoverable":
            raise RecoverableException(f"hiccup {n}")
        if action == "nonrecoverable":
            raise NonRecoverableException(f"enough at {n}")
        if action == "error":
            raise ValueError(f"bad cycle {n}")
        if action == "stop":
            self.stop()  # type: ignore[attr-defined]


class ScriptedThread(_Scripted, LoopingThreadAgent):
    pass


class ScriptedProcess(_Scripted, LoopingProcessAgent):
    pass


class _ScriptedTicker:
    """Periodic: sends ``{"tick": monotonic, "run": n}``, then acts on the script.

    ``config.script`` maps a run number (or ``"*"`` for every run) to an action:
    ``recoverable`` or ``nonrecoverable``.
    """

    Config = PeriodicConfig

    def runner(self) -> None:
        n = self.cycles_done  # type: ignore[attr-defined]
        self.send_message({"tick": time.monotonic(), "run": n})  # type: ignore[attr-defined]
        script = getattr(self.config, "script", None) or {}  # type: ignore[attr-defined]
        action = script.get(n, script.get("*"))
        if action == "recoverable":
            raise RecoverableException(f"hiccup {n}")
        if action == "nonrecoverable":
            raise NonRecoverableException(f"enough at {n}")


class ScriptedTickerThread(_ScriptedTicker, PeriodicThreadAgent):
    pass


class ScriptedTickerProcess(_ScriptedTicker, PeriodicProcessAgent):
    pass


# ----------------------------------------------------- orchestrator edge cases


class SegfaultProcess(OneShotProcessAgent):
    """Crashes its own process with SIGSEGV."""

    def task(self) -> Any:
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(30)  # not reached: SIGSEGV's default action ends the process


class _Echo:
    """Sends ``{"echo": self.echo}`` (kwarg ``echo``) as a DATA message."""

    def task(self) -> Any:
        self.send_message({"echo": self.echo})  # type: ignore[attr-defined]


class EchoThread(_Echo, OneShotThreadAgent):
    pass


class EchoProcess(_Echo, OneShotProcessAgent):
    pass


class _InitBoom:
    """Its constructor raises: the start fails before anything runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("constructor failed")

    def task(self) -> Any:  # pragma: no cover - never constructed
        return None


class InitBoomThread(_InitBoom, OneShotThreadAgent):
    pass


class InitBoomProcess(_InitBoom, OneShotProcessAgent):
    pass


class NeverStartsThread(OneShotThreadAgent):
    """Its thread never gets to ``run()``: if stopped, it ends without a word."""

    def task(self) -> Any:
        return None

    def _thread_main(self) -> None:
        if self.stop_event.wait(30):
            link = self._link
            if link is not None:
                link.close()
            return
        super()._thread_main()  # type: ignore[misc]


class NeverStartsProcess(OneShotProcessAgent):
    """Its child hangs while unpickling the agent, before ``run()`` (SIGTERM ends it)."""

    def task(self) -> Any:
        return None

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Only the child unpickles the agent.
        time.sleep(30)
        super().__setstate__(state)


class TermCleanupMarkerProcess(TermCleanupProcess):
    """TermCleanupProcess that also writes the file ``marker`` (kwarg) in on_close."""

    def on_close(self) -> None:
        super().on_close()
        Path(self.marker).write_text("on_close ran")  # type: ignore[attr-defined]


class CloseMarkerProcess(LoopingProcessAgent):
    """Loops until stopped; writes the file ``marker`` (kwarg) in on_close."""

    def cycle(self) -> None:
        self.wait(0.02)

    def on_close(self) -> None:
        Path(self.marker).write_text("on_close ran")  # type: ignore[attr-defined]


class HangOnStopThread(LoopingThreadAgent):
    """Loops until stopped, but its ``on_stop`` blocks until ``gate`` is set."""

    def cycle(self) -> None:
        self.wait(0.01)

    def on_stop(self) -> None:
        self.gate.wait(30)  # type: ignore[attr-defined]


# --------------------------------------------------------------------- plugins


class ChannelPlugin:
    """A plugin that reports each call as ``{"step": "<tag>.<call>"}`` on a channel.

    ``fail_on`` names the call that raises after reporting (``initialize``/``finalize``).
    """

    def __init__(
        self, channel: MessageChannel, tag: str = "plugin", fail_on: str | None = None
    ) -> None:
        self.channel = channel
        self.tag = tag
        self.fail_on = fail_on
        self.owner_name: str | None = None

    def _report(self, call: str) -> None:
        self.channel.put(
            ServiceMessage(
                self.tag,
                MessageType.DATA,
                {"step": f"{self.tag}.{call}", "owner": self.owner_name},
            )
        )
        if self.fail_on == call:
            raise RuntimeError(f"{self.tag} {call} failed")

    def set_owner(self, owner: Any) -> None:
        self.owner_name = owner.name
        self._report("set_owner")

    def initialize(self) -> None:
        self._report("initialize")

    def finalize(self) -> None:
        self._report("finalize")


class RecordingPlugin:
    """A plugin that reports ``initialize``/``finalize`` through its owner agent."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.owner: Any = None

    def set_owner(self, owner: Any) -> None:
        self.owner = owner

    def initialize(self) -> None:
        self.owner.send_message({"plugin": self.label, "step": "initialize"})

    def finalize(self) -> None:
        self.owner.send_message({"plugin": self.label, "step": "finalize"})


# ------------------------------------------------------------- process hygiene


MARKER_ENV = "PYO_HYGIENE_MARKER"
"""The environment variable that marks every process a hygiene test starts."""

GRANDCHILD_CODE = """
import os, signal, sys, time
mode, log = sys.argv[1], sys.argv[2]
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
elif log:
    def record(signum, frame):
        with open(log, "a") as file:
            file.write(f"grandchild-SIGTERM {time.monotonic()!r}\\n")
        os._exit(0)
    signal.signal(signal.SIGTERM, record)
print("up", flush=True)
time.sleep(600)
"""
"""What a grandchild runs: sets its SIGTERM handling, says ``up``, sleeps 600 s."""


class HygieneProcess(BaseProcessAgent):
    """A process agent that starts grandchildren and may resist stopping.

    Its keyword arguments (all optional, deliberately not class attributes) are:

    * ``marker``: a token; each grandchild runs with ``PYO_HYGIENE_MARKER=<marker>``
      in its environment, so a test finds it by scanning ``/proc/*/environ``;
    * ``children``: how many grandchildren ``setup()`` starts (``python -c`` sleeping
      600 s); the grandchildren with an odd index ignore SIGTERM, the others die of
      it (after appending ``"grandchild-SIGTERM <time.monotonic()>"`` to ``log`` if
      there is one). ``setup()`` returns (and READY is sent) only once every
      grandchild runs with its handlers in place;
    * ``ignore_stop``: ``execute()`` ignores the stop event (default ``False``);
    * ``catch``: names of signals (``"SIGTERM"``, ``"SIGINT"``) the agent catches,
      records in ``log`` and otherwise ignores;
    * ``log``: a file the agent appends ``"<SIGNAME> <time.monotonic()>"`` to for
      each caught signal, then ``"tick <time.monotonic()>"`` every 20 ms while it
      still runs (``time.monotonic`` is one clock for every process on Linux);
    * ``crash_flag``: a path; ``execute()`` raises ``RuntimeError`` once it exists.
    """

    def setup(self) -> None:
        super().setup()
        self._caught = False
        for name in getattr(self, "catch", ()):
            signal.signal(signal.Signals[name], self._record_signal)
        env = dict(os.environ)
        marker = getattr(self, "marker", None)
        if marker is not None:
            env[MARKER_ENV] = marker
        self._grandchildren: list[subprocess.Popen[str]] = []
        log = getattr(self, "log", None) or ""
        for index in range(getattr(self, "children", 0)):
            mode = "ignore-term" if index % 2 else "default"
            child = subprocess.Popen(
                [sys.executable, "-c", GRANDCHILD_CODE, mode, log],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                text=True,
            )
            self._grandchildren.append(child)
        for child in self._grandchildren:
            assert child.stdout is not None
            line = child.stdout.readline().strip()
            if line != "up":
                raise RuntimeError(f"grandchild {child.pid} did not start: {line!r}")

    def _record_signal(self, signum: int, frame: FrameType | None) -> None:
        self._caught = True
        self._log(f"{signal.Signals(signum).name} {time.monotonic()!r}")

    def _log(self, line: str) -> None:
        log = getattr(self, "log", None)
        if log is not None:
            with Path(log).open("a") as file:
                file.write(line + "\n")

    def execute(self) -> None:
        ignore_stop = getattr(self, "ignore_stop", False)
        crash_flag = getattr(self, "crash_flag", None)
        while ignore_stop or not self.stop_requested:
            if crash_flag is not None and Path(crash_flag).exists():
                raise RuntimeError("crashed on purpose")
            if self._caught:
                self._log(f"tick {time.monotonic()!r}")
            time.sleep(0.02)


# ---------------------------------------------------------------------- lookup


_KINDS: dict[str, dict[str, type[Any]]] = {
    "forever": {"thread": ForeverThread, "process": ForeverProcess},
    "counter": {"thread": CounterThread, "process": CounterProcess},
    "quick": {"thread": QuickThread, "process": QuickProcess},
    "slow": {"thread": SlowThread, "process": SlowProcess},
    "boom": {"thread": BoomThread, "process": BoomProcess},
    "setup_boom": {"thread": SetupBoomThread, "process": SetupBoomProcess},
    "recovering": {"thread": RecoveringThread, "process": RecoveringProcess},
    "ticker": {"thread": TickerThread, "process": TickerProcess},
    "bad_config": {"thread": BadConfigThread, "process": BadConfigProcess},
    "warn_config": {"thread": WarnConfigThread, "process": WarnConfigProcess},
    "hanging": {"thread": HangingThread, "process": HangingProcess},
    "beating": {"thread": BeatingThread, "process": BeatingProcess},
    "stop_log": {"thread": StopLogThread, "process": StopLogProcess},
    "probe": {"thread": ProbeThread, "process": ProbeProcess},
    "oneshot_probe": {"thread": OneShotProbeThread, "process": OneShotProbeProcess},
    "scripted": {"thread": ScriptedThread, "process": ScriptedProcess},
    "scripted_ticker": {
        "thread": ScriptedTickerThread,
        "process": ScriptedTickerProcess,
    },
    "pool": {"thread": PoolThreadAgent, "process": PoolProcessAgent},
    "echo": {"thread": EchoThread, "process": EchoProcess},
    "init_boom": {"thread": InitBoomThread, "process": InitBoomProcess},
    "never_starts": {"thread": NeverStartsThread, "process": NeverStartsProcess},
}


def agent(kind: str, flavour: str) -> type[Any]:
    """The test agent class of ``kind`` in ``flavour`` (``thread`` or ``process``)."""
    return _KINDS[kind][flavour]


# ------------------------------------------------ reading what the agents send


def new_orchestrator(name: str = "test", **overrides: Any) -> Orchestrator:
    """An orchestrator without a command interface (no socket file to clean up)."""
    overrides.setdefault("enable_command_interface", False)
    overrides.setdefault("agent_stop_timeout", 5.0)
    return Orchestrator(name, OrchestratorConfig(**overrides))


def is_status(message: ServiceMessage, event: str | None = None) -> bool:
    """Whether ``message`` is a STATUS (of ``event``, if given)."""
    return message.type is MessageType.STATUS and (
        event is None or message.payload.get("event") == event
    )


def read_until_closed(
    channel: MessageChannel, names: Iterable[str], timeout: float = 15.0
) -> list[ServiceMessage]:
    """Read ``channel`` until every agent in ``names`` has sent its CLOSE status."""
    pending = set(names)
    out: list[ServiceMessage] = []
    deadline = time.monotonic() + timeout
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"no agent_close from {sorted(pending)} within {timeout} s; "
                f"got {trace(out)}"
            )
        try:
            message = channel.get(timeout=remaining)
        except queue.Empty:
            continue
        out.append(message)
        if is_status(message, "agent_close"):
            pending.discard(message.sender)
    return out


def read_until(
    channel: MessageChannel,
    predicate: Any,
    timeout: float = 15.0,
) -> list[ServiceMessage]:
    """Read ``channel`` until a message satisfies ``predicate``; return all read."""
    out: list[ServiceMessage] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"awaited message not seen; got {trace(out)}")
        try:
            message = channel.get(timeout=remaining)
        except queue.Empty:
            continue
        out.append(message)
        if predicate(message):
            return out


def trace(messages: Iterable[ServiceMessage], sender: str | None = None) -> list[str]:
    """A readable trace: ``status:<event>`` for STATUS, the ``step`` or ``cycle`` else."""
    out = []
    for m in messages:
        if sender is not None and m.sender != sender:
            continue
        if m.type is MessageType.STATUS:
            out.append(f"status:{m.payload.get('event')}")
        elif "step" in m.payload:
            out.append(str(m.payload["step"]))
        elif "cycle" in m.payload:
            out.append(f"cycle:{m.payload['cycle']}")
        else:
            out.append(repr(m.payload))
    return out


def statuses(
    messages: Iterable[ServiceMessage], sender: str | None = None
) -> list[str]:
    """The STATUS events in ``messages`` (of ``sender``), in order."""
    return [
        str(m.payload.get("event"))
        for m in messages
        if is_status(m) and (sender is None or m.sender == sender)
    ]


def cycles(messages: Iterable[ServiceMessage]) -> list[int]:
    """The ``cycle`` numbers reported, in order."""
    return [
        int(m.payload["cycle"])
        for m in messages
        if m.type is MessageType.DATA and "cycle" in m.payload
    ]


def run_to_end(agent: Any, timeout: float = 15.0) -> None:
    """Start a standalone agent and wait for it to end; clean up if it does not."""
    agent.start()
    agent.join(timeout)
    if agent.is_alive():
        agent.stop()
        agent.join(5)
        if agent.is_alive() and agent.flavour == "process":
            agent.kill()
            agent.join(5)
        raise AssertionError(f"{agent!r} did not end within {timeout} s")
