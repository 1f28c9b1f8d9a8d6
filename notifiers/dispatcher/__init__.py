"""The dispatcher: notifications leave the orchestrator's threads here, and never block them.

``submit()`` is an O(1) put on a queue plus, at most, one wake-up of the dispatcher's
own thread, which runs one asyncio loop. On that loop each channel has its own bounded
queue and its own worker task, so a dead or slow channel never delays another one.
Each delivery runs under the channel's :class:`~notifiers.retry.RetryPolicy` and ends
as one :class:`~notifiers.base.DeliveryResult`, kept in a ring buffer and handed to
``on_result`` hooks. ``close(timeout)`` drains what it can, waiting as long as
deliveries keep ending (``timeout`` seconds without one, or ``max_wait`` in all, end
it), records what it abandons, logs it with the count per channel, returns it (a
:class:`~notifiers.dispatcher.CloseReport`, with each channel's delivered, failed,
dropped and abandoned counts), and joins the thread. A delivery that fails for
good is logged at WARNING as it happens (channel, error class, redacted message);
each retry's wait at INFO (``telegram: attempt 3/5 failed (ConnectError), next in
4 s``).

A channel retries one alert at a time. When that alert's retries run out (a
transient failure: the channel is down), the alerts queued behind it do not each
run into the outage with retries of their own: the channel is *parked* and they
wait, in order, until ``outbox_retry`` seconds (or the server's longer retry-after)
have passed; then the oldest is tried once, and if it gets through, everything that
waited is sent at once, in order (as fast as the destination's rate limit allows).
Without a state (below) they wait in memory (result ``failed``,
``error_class="Held"``, then their delivery); the alert whose retries ran out is
given up (``failed``). ``close()`` gives a parked channel one last try, then reports
what it holds as abandoned.

With a :class:`~notifiers.state.NotifierState` (``state=``), nothing accepted is lost:

* every (notification, channel) is written ahead to the outbox, on the loop thread
  and in one transaction per wake-up (never on the thread calling ``submit()``), and
  deleted once delivered;
* retries exhausted, or a retry-after beyond the policy's ``retry_after_cap``: the
  row stays (``failed``) and the channel is *parked*: the alerts after it are kept in
  the outbox too (result ``failed``, ``error_class="Outboxed"``), nothing is sent to
  that channel until ``outbox_retry`` seconds (or the server's retry-after) have
  passed, and then the outbox is delivered from its oldest row on, in order;
* a permanent error or a "maybe delivered" timeout leaves the row ``dead``: kept for
  ``notify outbox list``, replayed only on request (no duplicate is ever sent on
  our own);
* a queue overflow is not a drop: the alert waits in the outbox, in order;
* ``close()`` leaves what it abandons ``pending``; the next dispatcher on the same
  file (same channel names) replays the ``pending`` and ``failed`` rows first, in
  the order they were accepted, once each;
* mutes (agent, event or channel, with expiry) are read from the file, re-read within
  ``state_refresh`` seconds of a change by another process; a muted alert is counted
  as ``suppressed`` and not sent (no result);
* the channel counters, with each channel's delivery-time histogram
  (``ChannelStats.delivery_*``), are saved to the file at most every
  ``state_refresh`` seconds, and at ``close()``.

Rows belong to the dispatcher that wrote them until it closes (or its process dies:
a running dispatcher takes a dead one's rows over within ~30 s, a new one at once),
so two processes on one file never send each other's alerts. Delivery is once per
(alert, channel), except an alert cut off mid-send (``close()``'s timeout, a killed
process, or a crash between the send and the row's delete): it stays ``pending``
and is sent again (at least once, never lost). A failing state file (disk full,
locked too long) is logged at ERROR and alerts go on without it.
"""

from __future__ import annotations

from ._delivery import SendGate
from ._dispatcher import Dispatcher
from ._items import ChannelStats
from ._results import ResultHook as ResultHook
from ._summary import ChannelSummary, CloseReport

__all__ = ["ChannelStats", "ChannelSummary", "CloseReport", "Dispatcher", "SendGate"]
