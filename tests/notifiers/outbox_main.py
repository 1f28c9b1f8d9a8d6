"""A notifier process of its own, for the outbox tests.

``python -m tests.notifiers.outbox_main MODE PATH COUNT [TAG]`` (cwd the repository
root, ``PYTHONPATH`` naming it):

* ``hang``: a dispatcher with the state file ``PATH`` and one channel, ``pager``,
  whose sends never end; submits COUNT alerts ``alert-0`` … and, once every one is
  written ahead to the outbox, prints ``SUBMITTED`` and waits to be killed;
* ``write``: puts COUNT alerts ``TAG-0`` … on channel ``w`` of ``PATH``, one
  transaction each (another process writes at the same time), then prints ``DONE``.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time

from notifiers import Dispatcher, Notification, Notifier
from notifiers.state import NotifierState


class NeverAnswers(Notifier):
    """A channel whose service never answers."""

    channel = "pager"

    async def send(self, notification: Notification) -> None:
        await asyncio.Event().wait()


def hang(path: str, count: int) -> None:
    dispatcher = Dispatcher([NeverAnswers()], state=path, name="notifiers-outbox-main")
    for i in range(count):
        dispatcher.submit(Notification(f"alert-{i}", f"body {i}", agent="worker"))
    with NotifierState(path) as reader:
        deadline = time.monotonic() + 10
        while len(reader.rows(channels=["pager"])) < count:
            if time.monotonic() > deadline:
                sys.exit("the alerts were not written ahead in 10 s")
            time.sleep(0.01)
    print("SUBMITTED", flush=True)
    threading.Event().wait()


def write(path: str, count: int, tag: str) -> None:
    with NotifierState(path) as state:
        for i in range(count):
            state.put(Notification(f"{tag}-{i}", "body"), ["w"])
    print("DONE", flush=True)


def main(argv: list[str]) -> None:
    mode, path, count = argv[0], argv[1], int(argv[2])
    if mode == "hang":
        hang(path, count)
    elif mode == "write":
        write(path, count, argv[3])
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
