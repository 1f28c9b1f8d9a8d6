"""Alert rules between the events and the channels: alerts people can live with.

An :class:`AlertPipeline` sits between the preset's handler and the dispatcher. It is
pure (no I/O, no threads of its own), thread-safe (one lock) and does O(1) work per
alert (amortised; timers are a heap of at most one entry per group, agent and
digest). Time comes from an injectable monotonic clock, local time for quiet hours,
mutes and the texts from an injectable wall clock.

* :meth:`~AlertPipeline.offer` takes one :class:`~notifiers.base.Notification` and
  returns what to send now (maybe nothing, maybe a summary that fell due).
* :meth:`~AlertPipeline.due` returns the summaries, recoveries and digests whose time
  has come; :meth:`~AlertPipeline.next_due` says when the next one does.
  :class:`PipelineTimer` is the small thread that calls it (started on the first
  pending summary, stopped and joined by ``close()``).
* :meth:`~AlertPipeline.flush` returns everything still pending (at detach).

The rules are small objects (:class:`AlertRule`: one method, ``__call__(alert) ->
bool``; ``True`` takes the alert) over one shared :class:`PipelineState`; each alert
goes through the list in turn as an :class:`Alert`, and what no rule takes is sent.
:func:`default_rules` gives them in order: :class:`detect_recovery`,
:class:`detect_flapping`, :class:`drop_muted`, :class:`hold_quiet_agents`,
:class:`hold_in_quiet_hours`, :class:`group_alerts`, :class:`drop_duplicates`; add
your own with ``AlertPipeline(rules=[*default_rules(), mine])``.

Their settings (:class:`PipelineConfig`):

Grouping
    Alerts of one (agent, event) in ``group_events`` within ``group_window`` seconds
    become one summary, "worker-3: agent_error ×12 in 48 s" with the last error; the
    first one of a window goes out at once (``group_send_first``). While alerts keep
    coming, each further window ends in one summary; a quiet window closes the group.
Dedup
    An identical alert (same agent, event and error text) is not sent again within
    ``dedup_window`` seconds. For a grouped event this stretches the group's window
    while only identical alerts arrive; for other events (at least
    ``dedup_min_severity``) the repeats are dropped and counted, and the next message
    sent for that agent says "(+7 identical suppressed since 09:58)". AGENT_FATAL is
    never deduplicated.
Flapping and FATAL
    ``flap_threshold`` AGENT_ERRORs of one agent within ``flap_window`` seconds send
    one "is flapping" alert; an AGENT_FATAL is sent once (``quiet_after_fatal``). Then
    the agent is quiet: its alerts are counted, not sent, until it is stable again
    (READY and no error for ``stable_after`` seconds) or, after FATAL, an operator
    starts it. Pending group counts of the agent are put on that alert. What the
    quiet holds back is always reported, so the counts in an agent's messages add
    up to its alerts: on the FATAL alert (flapping, then FATAL), on the recovery
    message, or else in a report of its own ("⏸ worker-3: 12 alerts held back, …",
    event ``agent_held_back``) when the agent is stable again or started by an
    operator, every ``held_report_interval`` seconds while it stays quiet (only if
    something new was held), and at :meth:`~AlertPipeline.flush` (detach).
Recovery (``recovery``, off by default)
    An agent that failed and then is READY with no error for ``stable_after`` seconds
    gives "✔ worker-3 recovered after 42 s" (from its first failure to the READY that
    held).
Mutes
    ``mutes`` in the config (until a time), :meth:`~AlertPipeline.mute` at run time
    (for some seconds, or until a time) and a ``muted(agent, event)`` predicate drop
    matching alerts; the next message for the agent after the mute counts them.
Quiet hours
    Between ``quiet_hours.start`` and ``.end`` (local time in a time zone; may cross
    midnight) alerts below ``quiet_hours.hold_below`` (CRITICAL) are held and sent as
    one "Quiet hours digest: 14 alerts held" when the quiet hours end.

Texts come from :data:`~notifiers.templates.PIPELINE_TEMPLATES` (overridable).
"""  # noqa: RUF002

from __future__ import annotations

from ..state import Mute
from ._dedup import drop_duplicates
from ._flapping import detect_flapping
from ._grouping import group_alerts
from ._mutes import MutedPredicate, drop_muted
from ._pipeline import AlertPipeline, default_rules
from ._quiet_agents import hold_quiet_agents
from ._quiet_hours import hold_in_quiet_hours
from ._recovery import detect_recovery
from ._rule import AlertRule, RuleLike
from ._state import Alert, PipelineState, PipelineStats
from .config import GroupRule, MuteRule, PipelineConfig, QuietHours
from .events import (
    AGENT_FLAPPING,
    AGENT_HELD_BACK,
    AGENT_RECOVERED,
    ALERTS_DIGEST,
    OBSERVED_EVENTS,
)
from .timer import PipelineTimer

__all__ = [
    "AGENT_FLAPPING",
    "AGENT_HELD_BACK",
    "AGENT_RECOVERED",
    "ALERTS_DIGEST",
    "OBSERVED_EVENTS",
    "Alert",
    "AlertPipeline",
    "AlertRule",
    "GroupRule",
    "Mute",
    "MuteRule",
    "MutedPredicate",
    "PipelineConfig",
    "PipelineState",
    "PipelineStats",
    "PipelineTimer",
    "QuietHours",
    "RuleLike",
    "default_rules",
    "detect_flapping",
    "detect_recovery",
    "drop_duplicates",
    "drop_muted",
    "group_alerts",
    "hold_in_quiet_hours",
    "hold_quiet_agents",
]
