"""Module-level agents, plugins and helpers for the agent-layer tests.

Process agents are pickled into a forkserver child, so every class here lives at module
level. Agents report what they do as DATA messages ``{"step": ...}`` on their
``msg_channel``; lifecycle STATUS messages arrive on the same channel, in order.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterable
from typing import Any

from pyorchestrate.core.agent import (
    AgentConfig,
    BaseAgent,
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

# --------------------------------------------------------------------------- configs


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


# --------------------------------------------------------------------------- probes


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


# --------------------------------------------------------------------------- plugins


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


# --------------------------------------------------------------------------- lookup

_KINDS: dict[str, dict[str, type[BaseAgent]]] = {
    "probe": {"thread": ProbeThread, "process": ProbeProcess},
    "oneshot_probe": {"thread": OneShotProbeThread, "process": OneShotProbeProcess},
    "scripted": {"thread": ScriptedThread, "process": ScriptedProcess},
    "ticker": {"thread": ScriptedTickerThread, "process": ScriptedTickerProcess},
    "pool": {"thread": PoolThreadAgent, "process": PoolProcessAgent},
}


def pick(kind: str, flavour: str) -> type[Any]:
    """The agent class of ``kind`` for ``flavour`` (``thread`` or ``process``)."""
    return _KINDS[kind][flavour]


# --------------------------------------------------------------------------- helpers


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
