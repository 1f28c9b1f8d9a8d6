"""Recovery messages are opt-in per channel: the rule turns on for the channels that
ask, and the others never get an ``agent_recovered`` message."""

from __future__ import annotations

from notifiers import Dispatcher, Notification, attach_from_settings, load_settings
from notifiers.testing import RecordingNotifier


class _Fake:
    def register_event(self, event: object, callback: object) -> None: ...

    def unregister_event(self, event: object, callback: object) -> bool:
        return True


def test_one_channel_opts_in_and_only_it_gets_recoveries() -> None:
    settings = load_settings(
        webhook={"url": "http://127.0.0.1:9/po-rec-1", "recovery": True},
        apprise={"urls": ["json://127.0.0.1:9/po-rec-2"]},
        state_path="none",
    )
    with attach_from_settings(_Fake(), settings) as attachment:
        assert attachment.pipeline is not None
        assert attachment.pipeline.config.recovery is True  # on for the channel
        by_name = {
            c.notifier.name: c.notifier
            for c in attachment.dispatcher._channels.values()
        }
        assert by_name["webhook"].skip_events == frozenset()
        assert by_name["apprise"].skip_events == {"agent_recovered"}


def test_rules_recovery_for_all_but_one_channel_opting_out() -> None:
    settings = load_settings(
        webhook={"url": "http://127.0.0.1:9/po-rec-3", "recovery": False},
        apprise={"urls": ["json://127.0.0.1:9/po-rec-4"]},
        rules={"recovery": True},
        state_path="none",
    )
    with attach_from_settings(_Fake(), settings) as attachment:
        by_name = {
            c.notifier.name: c.notifier
            for c in attachment.dispatcher._channels.values()
        }
        assert by_name["webhook"].skip_events == {"agent_recovered"}
        assert by_name["apprise"].skip_events == frozenset()


def test_the_dispatcher_gives_a_channel_only_what_it_accepts() -> None:
    wants, skips = RecordingNotifier(name="wants"), RecordingNotifier(name="skips")
    skips.skip_events = frozenset({"agent_recovered"})
    with Dispatcher([wants, skips], rate_limits=False) as dispatcher:
        dispatcher.submit(Notification("✔ w recovered", "", event="agent_recovered"))
        dispatcher.submit(Notification("✖ w failed", "", event="agent_error"))
        assert dispatcher.flush(5)
    assert [n.event for n in wants.sent] == ["agent_recovered", "agent_error"]
    assert [n.event for n in skips.sent] == ["agent_error"]
