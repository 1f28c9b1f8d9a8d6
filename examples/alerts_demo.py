"""The main demo: an agent fails, and the alert reaches Telegram, email and Slack.

Everything runs on this machine: the demo starts a fake Telegram Bot API server, an
SMTP server and a Slack-style webhook receiver on 127.0.0.1, points the real channels
at them (python-telegram-bot through its ``base_url``, apprise for ``mailto://`` and
``slack://``), runs an orchestrator whose ``etl`` agent fails, and shows what each
service received.

Run: python examples/alerts_demo.py      (or: bash scripts/demo.sh)
"""

from __future__ import annotations

import sys

from notifiers import AppriseNotifier, TelegramNotifier, attach, redact
from notifiers.testing import FakeTelegramServer, LocalSMTPServer, WebhookSink
from pyorchestrate import OneShotThreadAgent, Orchestrator

DEMO_TOKEN = (
    "123456789:AAF-demo-token-not-a-real-one-xyz"  # a fake, for the fake server
)


class Extract(OneShotThreadAgent):
    def task(self) -> None:
        print("extract: 3 files read", flush=True)


class Etl(OneShotThreadAgent):
    def task(self) -> None:
        raise ConnectionError("database at db.internal:5432 refused the connection")


def main() -> int:
    with (
        FakeTelegramServer() as telegram,
        LocalSMTPServer() as smtp,
        WebhookSink() as slack,
    ):
        channels = [
            TelegramNotifier(DEMO_TOKEN, chat_id=4242, base_url=telegram.base_url),
            AppriseNotifier(smtp.url(to="oncall@example.com"), name="email"),
            AppriseNotifier(
                "slack://T000DEMO/B000DEMO/XXXXdemoXXXX",
                name="slack",
                slack_webhook_base=slack.slack_base,
            ),
        ]
        orchestrator = Orchestrator(
            "alerts-demo", Orchestrator.Config(enable_command_interface=False)
        )
        orchestrator.register_agent(Extract, "extract")
        orchestrator.register_agent(Etl, "etl")
        orchestrator.add_dependency("etl", ["extract"])

        # One line: AGENT_ERROR events of this orchestrator go to the three channels.
        alerts = attach(orchestrator, "errors_only", *channels)

        orchestrator.start()
        orchestrator.join()
        alerts.dispatcher.flush(30)
        results = alerts.detach()  # closes the dispatcher; returns what it abandoned

        print("\ndeliveries:")
        for result in alerts.results:
            print(
                f"  {result.channel:<9} {result.status.value:<10} "
                f"attempts={result.attempts} ({result.duration * 1000:.0f} ms)"
            )
        print(f"  abandoned: {len(results)}")

        message = telegram.wait_for(1)[0]
        print("\nTelegram (fake Bot API) received, chat", message["chat_id"])
        print("  " + message["text"].replace("\n", "\n  "))
        email = smtp.wait_for(1)[0]
        print(f"\nEmail (local SMTP) to {', '.join(email.to)}: {email.subject}")
        slack_post = slack.wait_for(1)[0]
        attachment = slack_post.json["attachments"][0]
        # redact(): the webhook path is a secret, even a demo one
        print(
            f"\nSlack (local webhook) {redact(slack_post.path)}: {attachment['title']}"
        )

    # 1: the etl agent fails on purpose (0 only when every agent succeeded)
    return orchestrator.exit_code


if __name__ == "__main__":
    sys.exit(main())
