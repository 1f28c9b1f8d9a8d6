"""``/metrics``: the orchestrator in Prometheus' text format, via ``prometheus_client``.

Per agent, read with one ``ps`` at each scrape (its cost grows with the number of
agents, never with the history):

* ``pyorchestrate_agent_state{agent,state}`` 1 for the agent's state, 0 for every
  other state (every state is always there, so a rule on any of them works);
* ``pyorchestrate_agent_restarts_total{agent}`` automatic restarts so far;
* ``pyorchestrate_agent_up{agent}`` 1 while the agent's thread or process is alive;
* ``pyorchestrate_agent_last_exit_code{agent}`` its last exit code: the current
  run's, else the last one the event stream reported (a restart clears the run's;
  absent until the agent has exited once).

And:

* ``pyorchestrate_events_total{event}`` events seen on the orchestrator's stream since
  the dashboard started, counted as they arrive; every event name is there from the
  start at 0, so an ``increase()`` rule fires on the first failure;
* ``pyorchestrate_orchestrator_up`` 1 when the scrape's ``ps`` was answered;
* ``pyorchestrate_web_pages`` live pages, ``pyorchestrate_web_pages_dropped_total``
  pages dropped for falling behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..core.errors import ControlError
from ..core.events import OrchestratorEvent
from ..core.orchestrator.states import AgentState
from ._hub import EventHub
from ._link import OrchestratorLink

__all__ = ["EventTally", "OrchestratorCollector"]


class EventTally:
    """What the metrics keep (in ``registry``, a registry of the dashboard's own,
    never the process-wide one) from the event stream: the events counter (every
    event's label set created at 0) and each agent's last exit code."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "pyorchestrate_events",
            "Events seen on the orchestrator's stream since the dashboard started.",
            ["event"],
            registry=registry,
        )
        for event in OrchestratorEvent:
            self.events.labels(event.value)
        self.last_exit_codes: dict[str, int] = {}

    def on_event(self, event: dict[str, Any]) -> None:
        """Count one event (called on the server's loop: O(1))."""
        name = str(event.get("event_name"))
        self.events.labels(name).inc()
        if name == OrchestratorEvent.AGENT_TERMINATED.value:
            data = event.get("data") or {}
            try:
                code = int(str(data.get("exit_code")))
            except (TypeError, ValueError):
                return
            self.last_exit_codes[str(event.get("agent"))] = code


class OrchestratorCollector(Collector):
    """The per-agent metrics, read with one ``ps`` per scrape (blocking: the
    registry is rendered on a worker thread)."""

    def __init__(
        self,
        link: OrchestratorLink,
        hub: EventHub | None = None,
        tally: EventTally | None = None,
    ) -> None:
        self.link = link
        self.hub = hub
        self.tally = tally

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "pyorchestrate_orchestrator_up",
            "1 when the orchestrator answered this scrape's ps, else 0.",
        )
        if self.hub is not None:
            yield GaugeMetricFamily(
                "pyorchestrate_web_pages",
                "Live dashboard pages (server-sent event streams).",
                value=self.hub.page_count,
            )
            yield CounterMetricFamily(
                "pyorchestrate_web_pages_dropped",
                "Live pages dropped because they fell too far behind.",
                value=self.hub.dropped_total,
            )
        try:
            data = self.link.call("ps")
        except ControlError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        last = dict(self.tally.last_exit_codes) if self.tally is not None else {}
        yield from _agent_families(data.get("agents") or [], last)


def _agent_families(
    agents: list[dict[str, Any]], last_exit_codes: dict[str, int]
) -> Iterable[Metric]:
    state = GaugeMetricFamily(
        "pyorchestrate_agent_state",
        "1 for the agent's lifecycle state, 0 for the others.",
        labels=["agent", "state"],
    )
    restarts = CounterMetricFamily(
        "pyorchestrate_agent_restarts",
        "Automatic restarts of the agent so far.",
        labels=["agent"],
    )
    alive = GaugeMetricFamily(
        "pyorchestrate_agent_up",
        "1 while the agent's thread or process is alive.",
        labels=["agent"],
    )
    exit_code = GaugeMetricFamily(
        "pyorchestrate_agent_last_exit_code",
        "The agent's last exit code (absent until it has exited once).",
        labels=["agent"],
    )
    for agent in agents:
        name = str(agent.get("name"))
        current = str(agent.get("lifecycle_state"))
        for member in AgentState:
            state.add_metric(
                [name, member.value], 1.0 if member.value == current else 0.0
            )
        restarts.add_metric([name], float(agent.get("restarts") or 0))
        alive.add_metric([name], 1.0 if agent.get("alive") else 0.0)
        code = agent.get("exit_code")
        if not isinstance(code, int) or isinstance(code, bool):
            code = last_exit_codes.get(name)
        if code is not None:
            exit_code.add_metric([name], float(code))
    yield from (state, restarts, alive, exit_code)
