"""Delivery times: each channel's histogram, counted by the dispatcher beside its
counters and saved with them in the state file (no write of its own)."""

from __future__ import annotations

from pathlib import Path

from notifiers import Dispatcher, Notification, RetryPolicy, TransientDeliveryError
from notifiers._histogram import DELIVERY_BUCKETS, read_histogram
from notifiers.state import NotifierState
from notifiers.testing import FlakyNotifier, RecordingNotifier

NO_WAIT = RetryPolicy(max_attempts=2, budget=1e9, initial=0, max_wait=0)


def test_each_delivery_is_counted_and_saved_with_the_counters(
    tmp_path: Path,
) -> None:
    path = tmp_path / "notify.sqlite3"
    ok = RecordingNotifier(name="ok", delay=0.3)
    down = FlakyNotifier([TransientDeliveryError("down")] * 100, name="down")
    dispatcher = Dispatcher(
        [ok, down],
        policy=NO_WAIT,
        rate_limits=False,
        state=path,
        outbox_retry=3600.0,
        name="delivery-times-test",
    )
    try:
        for i in range(3):
            dispatcher.submit(Notification(f"alert {i}", "body", agent="etl"))
        ok.wait_for(3)
        assert dispatcher.flush(30)
        live = dispatcher.stats()
        snapshot = live["ok"].delivery_buckets
        snapshot[0] += 100  # a snapshot's list is its own
        assert dispatcher.stats()["ok"].delivery_buckets[0] == 0
    finally:
        dispatcher.close()
    # ok: 3 deliveries, each of 0.3 s or more; down: one that failed (its two
    # attempts), then parked with the others in the outbox.
    assert (live["ok"].delivery_count, live["down"].delivery_count) == (3, 1)
    assert live["ok"].delivery_count == live["ok"].sent
    assert live["down"].delivery_count == live["down"].sent + live["down"].failed
    with NotifierState(path) as state:
        saved = state.load_stats()
    buckets, count, seconds = read_histogram(saved["ok"])
    assert count == 3 and seconds >= 3 * 0.25
    by_bound = dict(zip(DELIVERY_BUCKETS, buckets, strict=True))
    assert by_bound[0.25] == 0 and by_bound[60.0] == 3
    assert buckets == sorted(buckets)
    assert read_histogram(saved["down"])[1] == 1


def test_a_row_without_delivery_times_or_a_bad_one_reads_as_0() -> None:
    zeros = ([0] * len(DELIVERY_BUCKETS), 0, 0.0)
    assert read_histogram({"sent": 4}) == zeros  # saved by an older version
    assert (
        read_histogram(
            {"delivery_buckets": [1, 2], "delivery_count": 2, "delivery_sum": 1.0}
        )
        == zeros
    )  # other bounds
    assert (
        read_histogram(
            {
                "delivery_buckets": [0] * len(DELIVERY_BUCKETS),
                "delivery_count": -1,
                "delivery_sum": 0.0,
            }
        )
        == zeros
    )
    good = [0, 1, *[2] * (len(DELIVERY_BUCKETS) - 2)]
    assert read_histogram(
        {"delivery_buckets": good, "delivery_count": 3, "delivery_sum": 7.5}
    ) == (good, 3, 7.5)
