"""A notifier process of its own, for the durable-escalation test.

``python -m tests.notifiers.chatops.escalation_main MODE STATE BASE_URL SMTP_URL
ACK_TIMEOUT`` (cwd the repository root, ``PYTHONPATH`` naming it): a dispatcher on
the state file ``STATE`` with a Telegram channel (chat-ops on, ``ack_timeout``
seconds, polling the fake Bot API at ``BASE_URL``) whose fallback is e-mail to
``SMTP_URL``.

* ``alert``: sends one ERROR alert about ``loader``; once its escalation timer is in
  the state file, prints ``PENDING`` and waits to be killed;
* ``serve``: runs until an escalation fired here (or, with ``ACK_TIMEOUT`` of the
  form ``check:N``, checks the due ones once), delivers, prints ``FIRED <n>`` and
  closes.
"""

from __future__ import annotations

import sys
import threading
import time

from notifiers import (
    AppriseNotifier,
    Dispatcher,
    Notification,
    Severity,
    TelegramNotifier,
)
from notifiers.chatops import Access, ChatOps, Permission
from notifiers.state import NotifierState


def main(argv: list[str]) -> None:
    mode, path, base_url, smtp_url, timeout = argv
    ops = ChatOps(
        Access(users={42: Permission.OPERATOR}),
        ack_timeout=float(timeout.rpartition(":")[2]),
        poll_timeout=1.0,
    )
    telegram = TelegramNotifier("123:abc", 42, base_url=base_url, chatops=ops)
    email = AppriseNotifier(smtp_url, name="email")
    dispatcher = Dispatcher(
        [telegram, email],
        state=path,
        fallbacks={"telegram": "email"},
        name="notifiers-escalation-main",
    )
    if mode == "alert":
        dispatcher.submit(
            Notification(
                "loader failed", "batch 7 failed", Severity.ERROR, agent="loader"
            )
        )
        with NotifierState(path) as reader:
            deadline = time.monotonic() + 20
            while reader.chatops.next_due(["telegram"]) is None:
                if time.monotonic() > deadline:
                    sys.exit("no escalation timer in 20 s")
                time.sleep(0.01)
        print("PENDING", flush=True)
        threading.Event().wait()
    if timeout.startswith("check:"):
        fired = ops.check_escalations()
    else:
        deadline = time.monotonic() + 30
        while ops.escalated < 1:
            if time.monotonic() > deadline:
                sys.exit("nothing escalated in 30 s")
            time.sleep(0.02)
        fired = ops.escalated
    dispatcher.flush(20)
    print(f"FIRED {fired}", flush=True)
    report = dispatcher.close()
    print(report, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
