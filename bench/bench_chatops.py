"""Chat-ops latency: a Telegram update in, the reply out, on loopback.

Each row beside a baseline measured in the same run, sample by sample (interleaved):
a bare python-telegram-bot ``Application`` polling the same fake Bot API (another
bot token) on a loop thread of its own, answering the same update with no work.

* ``/status NAME`` from an allowed chat until its reply reaches the fake Bot API:
  chat-ops (polling on the dispatcher's loop, the allowlist, ``run_command("status",
  NAME)`` on a worker thread, the reply formatted and sent) vs the bare Application's
  ``CommandHandler`` answering a fixed text;
* a button press until the alert's message is edited: ``🔕 Mute 1 h`` (the signed
  data checked, the button used once, the callback answered, the mute written to the
  state file, ``record_action`` in the orchestrator's history, the message edited),
  vs the bare Application's ``CallbackQueryHandler`` answering the query and editing
  the message. A mute stands in for any button's action: a restart's own time is the
  agent's, not chat-ops' (the restart button runs the same path, then waits for
  READY).

Run: ``python bench/bench_chatops.py [--quick]`` from any directory.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stats

STATUS_TARGET = 20e-3  # update -> reply under 20 ms p99 (the target)
BUTTON_TARGET = 50e-3  # press -> message edited under 50 ms p99
TOKEN = "123456:bench-chatops-aaaaaaaaaaaaaaaaaaaaaaa"
BARE_TOKEN = "654321:bench-bare-bbbbbbbbbbbbbbbbbbbbbbbbb"
CHAT = 42
BARE_CHAT = 43


class _Bare:
    """A bare PTB Application on its own loop thread: the baseline."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-bare")
        self.app: Any = None

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _start(self) -> None:
        from telegram import Update
        from telegram.ext import (
            ApplicationBuilder,
            CallbackQueryHandler,
            CommandHandler,
            ContextTypes,
        )

        async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            assert update.effective_chat is not None
            await context.bot.send_message(update.effective_chat.id, "worker: READY")

        async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            query = update.callback_query
            assert query is not None
            await query.answer("done")
            await query.edit_message_text("done by @alice")

        app = (
            ApplicationBuilder()
            .token(BARE_TOKEN)
            .base_url(self.base_url)
            .concurrent_updates(True)
            .job_queue(None)
            .build()
        )
        app.add_handler(CommandHandler("status", status))
        app.add_handler(CallbackQueryHandler(button))
        await app.initialize()
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=10)
        self.app = app

    def send(self, text: str) -> Any:
        """A message from the bare bot (to press a button on)."""
        bot = self.app.bot
        return asyncio.run_coroutine_threadsafe(
            bot.send_message(BARE_CHAT, text), self.loop
        ).result(10)

    def stop(self) -> None:
        async def stop() -> None:
            app = self.app
            if app is not None:
                await app.updater.stop()
                await app.stop()
                await app.shutdown()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def measure(rounds: int) -> dict[str, list[float]]:
    """The four series: status, bare status, button, bare button (seconds)."""
    from notifiers import Notification, Severity, TelegramNotifier, attach
    from notifiers.chatops import Access, ChatOps, Permission
    from notifiers.testing import FakeTelegramServer
    from pyorchestrate import LoopingThreadAgent, Orchestrator

    class Worker(LoopingThreadAgent):
        def cycle(self) -> None:
            time.sleep(0.05)

    series: dict[str, list[float]] = {
        k: [] for k in ("status", "bare", "button", "bare_b")
    }
    with FakeTelegramServer() as fake, tempfile.TemporaryDirectory() as tmp:
        orchestrator = Orchestrator(
            "bench",
            Orchestrator.Config(enable_command_interface=False, check_interval=0.05),
        )
        orchestrator.register_agent(Worker, "worker")
        ops = ChatOps(Access(users={CHAT: Permission.OPERATOR}), poll_timeout=10)
        channel = TelegramNotifier(TOKEN, CHAT, base_url=fake.base_url, chatops=ops)
        alerts = attach(
            orchestrator,
            "errors_only",
            channel,
            rules=False,
            state=Path(tmp) / "notify.sqlite3",
            rate_limits=False,
        )
        bare = _Bare(fake.base_url)
        try:
            orchestrator.start()
            bare.start()
            deadline = time.monotonic() + _stats.WAIT_TIMEOUT
            while not ops.polling or fake.waiting_polls < 2:
                if time.monotonic() > deadline:
                    raise TimeoutError("the pollers did not start")
                time.sleep(0.01)

            def one_status() -> float:
                count = len(fake.messages)
                start = time.perf_counter()
                fake.send_command("/status worker", chat_id=CHAT, bot=TOKEN)
                fake.wait_for(count + 1)
                return time.perf_counter() - start

            def bare_status() -> float:
                count = len(fake.messages)
                start = time.perf_counter()
                fake.send_command("/status worker", chat_id=BARE_CHAT, bot=BARE_TOKEN)
                fake.wait_for(count + 1)
                return time.perf_counter() - start

            alerted = itertools.count()

            def one_button() -> float:
                # A new agent name each time: a muted agent's next alert is held back.
                name = f"job-{next(alerted)}"
                count = len(fake.messages)
                alerts.dispatcher.submit(
                    Notification(f"{name} failed", "boom", Severity.ERROR, agent=name)
                )
                fake.wait_for(count + 1)
                message_id = fake.sent_ids[-1]
                markup = fake.message(message_id)["reply_markup"]
                data = {
                    b["text"]: b["callback_data"]
                    for row in markup["inline_keyboard"]
                    for b in row
                }["🔕 Mute 1 h"]
                edits = len(fake.edits)
                start = time.perf_counter()
                fake.press_button(data, message_id=message_id, user_id=CHAT, bot=TOKEN)
                fake.wait_for_edits(edits + 1)
                return time.perf_counter() - start

            def bare_button() -> float:
                message = bare.send("pick one")
                edits = len(fake.edits)
                start = time.perf_counter()
                fake.press_button(
                    "x",
                    message_id=message.message_id,
                    chat_id=BARE_CHAT,
                    user_id=BARE_CHAT,
                    bot=BARE_TOKEN,
                )
                fake.wait_for_edits(edits + 1)
                return time.perf_counter() - start

            warmup = 3
            status, bare_s = _stats.interleave(rounds, warmup, one_status, bare_status)
            button, bare_b = _stats.interleave(
                max(3, rounds // 2), warmup, one_button, bare_button
            )
            series.update(status=status, bare=bare_s, button=button, bare_b=bare_b)
        finally:
            bare.stop()
            alerts.detach()
            orchestrator.shutdown(timeout=5)
    return series


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples (smoke run)")
    args = parser.parse_args(argv)
    rounds = 10 if args.quick else 200
    _stats.print_title("Chat-ops: update -> reply on loopback", samples=rounds)
    series = measure(rounds)
    _stats.print_header(high=99)
    _stats.latency_row(
        "/status NAME -> reply (bare PTB beside)",
        series["status"],
        series["bare"],
        STATUS_TARGET,
        high=99,
    )
    _stats.latency_row(
        "Mute press -> edited (bare: answer+edit)",
        series["button"],
        series["bare_b"],
        BUTTON_TARGET,
        high=99,
    )
    return _stats.finish()


if __name__ == "__main__":
    sys.exit(main())
