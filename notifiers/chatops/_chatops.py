"""ChatOps: act on an alert where it is read (buttons, commands, acks, escalation).

It lives on the dispatcher's event loop, beside the Telegram channel's one Bot: the
channel starts it (:meth:`ChatOps.launch`) and stops it (:meth:`ChatOps.stop`). It
polls with python-telegram-bot's own ``Application``/``Updater`` inside that loop,
runs every action through the orchestrator's command layer on a worker thread
(``Orchestrator.run_command``: the same checks as the CLI, and an
``OPERATOR_ACTION`` event in the history), and keeps what must survive a restart in
the state file (:class:`~notifiers.state.ChatOpsTable`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as _dt
import functools
import glob
import html
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_exponential_jitter,
    wait_fixed,
)

from .._durations import format_duration, parse_duration
from ..base import Notification, Severity
from ..redact import redact
from ..retry import RetryPolicy
from ._access import BUTTONS, COMMANDS, Access, Permission
from ._format import (
    MAX_TEXT,
    fit,
    format_history,
    format_orchestrator,
    format_ps,
    format_status,
    hhmm,
)
from ._tokens import CallbackSigner, InvalidToken

if TYPE_CHECKING:
    import telegram

    from ..dispatcher import Dispatcher
    from ..state import ChatAlert, ChatOpsTable, Escalation, NotifierState

__all__ = ["ChatOps", "SupportsCommands", "SupportsMute"]

logger = logging.getLogger("notifiers.chatops")

_T = TypeVar("_T")

_SETTLED = frozenset({"READY", "FAILED", "FATAL", "BACKOFF", "TERMINATED"})
_FINAL = frozenset({"TERMINATED", "FAILED", "FATAL"})
_ROOM = 400
"""Characters an alert's text leaves free for the lines saying what was done."""
_LABELS = {
    "restart": "↻ Restart",
    "mute": "🔕 Mute 1 h",
    "ack": "✔ Ack",
    "log": "📄 Log",
}


@runtime_checkable
class SupportsCommands(Protocol):
    """What chat-ops needs of an orchestrator (``pyorchestrate.Orchestrator``): its
    command layer and its audit trail."""

    def run_command(
        self,
        command: str,
        *args: Any,
        source: str = ...,
        actor: str | None = ...,
        meta: Mapping[str, Any] | None = ...,
        allowed: Any = ...,
    ) -> dict[str, Any]: ...

    def record_action(
        self,
        action: str,
        *,
        agent: str | None = ...,
        source: str,
        actor: str | None = ...,
        ok: bool = ...,
        result: str = ...,
        meta: Mapping[str, Any] | None = ...,
    ) -> None: ...


class SupportsMute(Protocol):
    """Where mutes go without a state file: the attachment's alert rules."""

    def mute(
        self,
        agent: str | None = None,
        event: Any = None,
        *,
        seconds: float | None = None,
        until: Any = None,
        reason: str = "",
    ) -> object: ...

    def unmute(
        self, mute: Any = None, *, agent: str | None = None, event: Any = None
    ) -> int: ...


class ChatOps:
    """Buttons on alerts, chat commands, acknowledgements and escalation.

    An unacknowledged alert goes to the Telegram channel's fallback in the
    dispatcher (``fallbacks={"telegram": "email"}``; ``[telegram] escalate_to`` in
    the settings), and on along its chain if that one fails too.

    Args:
        access: who may do what (deny by default).
        ack_timeout: seconds an alert at ``ack_severity`` or worse waits for an Ack
            before it is escalated (``None``: no acknowledgement asked).
        action_ttl: seconds a button stays valid.
        ack_severity: the least severe alert that must be acknowledged.
        poll_timeout: seconds of a long poll.
        ready_timeout: seconds a restart waits for the agent to be READY again.
        mute_for: seconds the Mute button mutes an agent.
    """

    def __init__(
        self,
        access: Access,
        *,
        ack_timeout: float | None = None,
        action_ttl: float = 86_400.0,
        ack_severity: Severity = Severity.ERROR,
        poll_timeout: float = 10.0,
        ready_timeout: float = 30.0,
        mute_for: float = 3600.0,
    ) -> None:
        if ack_timeout is not None and ack_timeout <= 0:
            raise ValueError("ack_timeout must be positive")
        self.access = access
        self.ack_timeout = ack_timeout
        self.action_ttl = action_ttl
        self.ack_severity = ack_severity
        self.poll_timeout = poll_timeout
        self.ready_timeout = ready_timeout
        self.mute_for = mute_for
        self.ignored = 0
        """Updates ignored: from a user or chat that is not allowed."""
        self.refused = 0
        """Requests refused: not permitted, or button data forged, altered, expired
        or used already."""
        self.handled = 0
        """Commands and button presses carried out."""
        self.escalated = 0
        """Alerts escalated here (nobody acknowledged them in time)."""
        self.polling_error: str | None = None
        """Why polling stopped for good (a 409 Conflict), if it did."""
        self.channel = "telegram"
        self.orchestrator: SupportsCommands | None = None
        self._rules: SupportsMute | None = None
        self._dispatcher: Dispatcher | None = None
        self._state: NotifierState | None = None
        self._own_state = False
        self._signer: CallbackSigner | None = None
        self._bot: telegram.Bot | None = None
        self._app: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake: asyncio.Event | None = None
        self._timer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._recorded: dict[int, asyncio.Event] = {}
        self._pruned = 0.0
        self._executor: ThreadPoolExecutor | None = None
        self._classify: Callable[[BaseException], BaseException] | None = None
        self._retrying = RetryPolicy(max_attempts=3, budget=30.0).retrying(
            name="telegram chat-ops"
        )
        self._starter: asyncio.Task[None] | None = None
        self._polling = threading.Event()  # set while polling runs; read anywhere
        self._stopping = False

    # ------------------------------------------------------------ wiring
    def bind_dispatcher(self, dispatcher: Dispatcher, channel: str) -> None:
        """The dispatcher that runs ``channel`` (before its loop starts): its state
        file keeps the secret, the alerts and the timers; without one, they live in
        memory, with a secret made for this process alone."""
        self._dispatcher = dispatcher
        self.channel = channel
        from ..state import NotifierState

        state = dispatcher.state
        if state is None:
            state = NotifierState(":memory:")
            self._own_state = True
            logger.warning(
                "telegram chat-ops without a state file: buttons are signed with a "
                "secret of this process (they stop working when it restarts) and "
                "escalation timers are kept in memory only"
            )
        self._state = state
        self._signer = CallbackSigner(
            state.chatops.secret(), ttl=self.action_ttl, clock=state.clock
        )
        target = dispatcher.fallbacks.get(channel)
        if self.ack_timeout is not None and target is None:
            logger.error(
                "channel %r asks for acks but has no channel to escalate to", channel
            )

    def bind(self, orchestrator: object, rules: SupportsMute | None = None) -> None:
        """The orchestrator commands act on (from :func:`~notifiers.presets.attach`),
        and the alert rules a mute goes to when there is no state file."""
        self._rules = rules
        if isinstance(orchestrator, SupportsCommands):
            self.orchestrator = orchestrator
            return
        logger.warning(
            "telegram chat-ops: the orchestrator has no run_command/record_action; "
            "commands and buttons that act on agents answer that they are unavailable"
        )

    @property
    def table(self) -> ChatOpsTable:
        if self._state is None:
            raise RuntimeError("chat-ops is not bound to a dispatcher")
        return self._state.chatops

    @property
    def signer(self) -> CallbackSigner:
        if self._signer is None:
            raise RuntimeError("chat-ops is not bound to a dispatcher")
        return self._signer

    @property
    def polling(self) -> bool:
        """Whether updates are being polled now."""
        return self._polling.is_set()

    # ------------------------------------------------------------ lifecycle
    def launch(
        self,
        bot: telegram.Bot,
        classify: Callable[[BaseException], BaseException] | None = None,
    ) -> None:
        """Start polling and the escalation timer on the running loop (returns at
        once: a Bot API that is down delays nothing). ``classify`` maps
        python-telegram-bot's errors to the notifier's (the channel's own), so a
        reply or an edit is retried as an alert would be (flood control
        honoured, a bad request not retried)."""
        self._bot = bot
        self._classify = classify
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._wake = asyncio.Event()
        self._starter = asyncio.get_running_loop().create_task(
            self._start_polling(), name="notifiers-chatops-start"
        )
        self._timer = asyncio.get_running_loop().create_task(
            self._escalations(), name="notifiers-chatops-escalations"
        )

    async def _start_polling(self) -> None:
        from telegram.error import InvalidToken as BadToken
        from telegram.error import NetworkError
        from telegram.ext import ApplicationBuilder, TypeHandler

        bot = self._bot
        assert bot is not None
        app = (
            ApplicationBuilder()
            .bot(bot)
            .concurrent_updates(True)
            .job_queue(None)
            .build()
        )
        app.add_handler(TypeHandler(object, self._on_update, block=False))
        self._app = app
        # Telegram down at start: try again (1 s, then up to 30 s apart) until stop.
        retrying = AsyncRetrying(
            wait=wait_exponential_jitter(multiplier=1, max=30, jitter=1),
            retry=retry_if_exception_type(NetworkError),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if not app._initialized:
                        await app.initialize()
                    if not app.running:
                        await app.start()
                    assert app.updater is not None
                    await app.updater.start_polling(
                        timeout=_dt.timedelta(seconds=self.poll_timeout),
                        allowed_updates=["message", "callback_query"],
                        error_callback=self._polling_error,
                    )
        except asyncio.CancelledError:
            raise
        except BadToken:
            self.polling_error = "the bot token was refused (InvalidToken)"
            logger.error("telegram chat-ops: %s; polling is off", self.polling_error)
            return
        except Exception as exc:
            self.polling_error = redact(f"{type(exc).__name__}: {exc}")
            logger.error("telegram chat-ops could not start: %s", self.polling_error)
            return
        self._polling.set()
        logger.info("telegram chat-ops: polling for commands and button presses")

    def _polling_error(self, exc: Exception) -> None:
        from telegram.error import Conflict

        if isinstance(exc, Conflict):
            if self.polling_error is None:
                self.polling_error = (
                    "409 Conflict: another process polls this bot (same token); "
                    "polling stopped here"
                )
                logger.error("telegram chat-ops: %s", self.polling_error)
                self._spawn(self._stop_polling())
            return
        logger.warning(
            "telegram chat-ops: polling failed (%s: %s); trying again",
            type(exc).__name__,
            redact(exc),
        )

    async def _stop_polling(self) -> None:
        app = self._app
        try:
            if app is None:
                return
            with contextlib.suppress(Exception):
                if app.updater is not None and app.updater.running:
                    await app.updater.stop()
            with contextlib.suppress(Exception):
                if app.running:
                    await app.stop()
        finally:
            self._polling.clear()  # once stopped (its last getUpdates sent)

    async def stop(self) -> None:
        """Stop polling, the timer and every action under way (on the loop)."""
        self._stopping = True
        for task in (self._starter, self._timer):
            if task is not None:
                task.cancel()
        waiting = [t for t in (self._starter, self._timer) if t is not None]
        if waiting:
            await asyncio.wait(waiting, timeout=5)
        await self._stop_polling()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.ready_timeout + 5)
        app, self._app = self._app, None
        if app is not None and app._initialized:
            with contextlib.suppress(Exception):
                await app.shutdown()
        executor, self._executor = self._executor, None
        if executor is not None:
            # Idle by now (the actions ended above): its threads end and are joined
            # at once. One still stuck in a command is left to finish on its own.
            busy = any(not t.done() for t in self._tasks)
            executor.shutdown(wait=not busy, cancel_futures=True)
        if self._own_state and self._state is not None:
            self._state.close()
            self._state = None
            self._own_state = False

    async def _in_thread(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``fn(*args, **kwargs)`` on one of chat-ops' own worker threads (never the
        loop's: a command that blocks, a restart waiting for READY, must not hold
        up anything else the dispatcher runs)."""
        executor = self._executor
        if executor is None:
            executor = self._executor = ThreadPoolExecutor(
                max_workers=4, thread_name_prefix="notifiers-chatops"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            executor, functools.partial(fn, *args, **kwargs)
        )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ alerts out
    def reserve(self, text_limit: int) -> int:
        """How long an alert's text may be, leaving room for what is done later."""
        return max(200, text_limit - _ROOM)

    def prepare(
        self, notification: Notification, chat: object
    ) -> tuple[int, Any] | None:
        """Before an alert about an agent is sent: keep it, and its buttons
        (``None``: not an agent's alert, no buttons)."""
        if notification.agent is None or self._state is None:
            return None
        alert = self.table.add_alert(notification, self.channel, chat)
        return alert, self.keyboard(alert, used="")

    def keyboard(self, alert: int, *, used: str, acked: bool = False) -> Any:
        """The buttons of ``alert`` still to use (log always)."""
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup

        letters = {"restart": "r", "mute": "m", "ack": "a", "log": "l"}
        buttons = [
            InlineKeyboardButton(label, callback_data=self.signer.sign(action, alert))
            for action, label in _LABELS.items()
            if action == "log"
            or (letters[action] not in used and not (action == "ack" and acked))
        ]
        rows = [buttons[:2], buttons[2:]] if len(buttons) > 2 else [buttons]
        return InlineKeyboardMarkup([row for row in rows if row])

    def sent(
        self,
        alert: int,
        notification: Notification,
        chat: object,
        message: Any,
        text: str,
    ) -> None:
        """After the alert went out: where it is, and its escalation timer."""
        table = self.table
        table.sent(alert, chat, int(message.message_id), text)
        recorded = self._recorded.pop(alert, None)
        if recorded is not None:  # a press that came before the send's answer
            recorded.set()
        target = self._escalation_target()
        if (
            self.ack_timeout is not None
            and target is not None
            and notification.severity >= self.ack_severity
        ):
            table.escalate_later(
                alert,
                notification,
                channel=self.channel,
                target=target,
                timeout=self.ack_timeout,
            )
            if self._wake is not None:
                self._wake.set()

    def _escalation_target(self) -> str | None:
        if self._dispatcher is None:
            return None
        return self._dispatcher.fallbacks.get(self.channel)

    # ------------------------------------------------------------ escalation
    async def _escalations(self) -> None:
        """Fire what is due; sleep until the next is (at most 5 s: another process
        may have added or acknowledged one)."""
        wake = self._wake
        assert wake is not None
        while not self._stopping:
            upcoming = await self._check()
            now = self.table.db.clock()
            wait = 5.0 if upcoming is None else min(5.0, max(0.0, upcoming - now))
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), wait + 0.01)

    async def _check(self) -> float | None:
        """Fire the escalations due now; when the next one is due. Once an hour,
        forget the alerts whose buttons expired (and whose timers are done)."""
        try:
            now = self.table.db.clock()
            if now - self._pruned > 3600:
                self._pruned = now
                self.table.prune(now - self.action_ttl - 3600)
            for escalation in self.table.due([self.channel]):
                if await self._fire(escalation):
                    self.escalated += 1
            return self.table.next_due([self.channel])
        except Exception as exc:  # a failing state file must not end the timer
            logger.error("telegram chat-ops: escalation check failed: %s", redact(exc))
            return None

    def check_escalations(self, timeout: float = 10.0) -> int:
        """From any other thread: fire the escalations due now (by the state's
        clock) and wait for that; returns how many fired so far in all. The timer
        does this by itself; this is for a test's clock or a CLI."""
        loop = self._loop
        if loop is None:
            return self.escalated
        asyncio.run_coroutine_threadsafe(self._check(), loop).result(timeout)
        return self.escalated

    async def _fire(self, escalation: Escalation) -> bool:
        dispatcher = self._dispatcher
        if dispatcher is None:
            return False
        original = escalation.notification()
        how_long = format_duration(escalation.timeout)
        why = f"not acknowledged on Telegram within {how_long}"
        escalated = dataclasses.replace(
            original,
            title=f"{original.title} ({why})",
            body=f"This alert was {why}, so it is sent here too.\n\n{original.body}",
            uid=f"{original.uid}~esc",
        )
        fired, row = self.table.fire(
            escalation,
            escalated,
            owner=dispatcher.outbox_owner,
            outbox=dispatcher.durable,
        )
        if not fired:
            return False
        if escalation.target not in dispatcher.channels:
            logger.error(
                "alert %d: no channel %r to escalate to",
                escalation.alert,
                escalation.target,
            )
            return False
        dispatcher.hand_over_escalated(escalated, self.channel, escalation.target, row)
        logger.warning(
            "alert %r %s: sent to %s", redact(original.title), why, escalation.target
        )
        await self._annotate(escalation.alert, f"⏫ {why}: sent to {escalation.target}")
        return True

    # ------------------------------------------------------------ updates in
    async def _on_update(self, update: object, context: object) -> None:
        from telegram import Update

        if not isinstance(update, Update):
            return
        try:
            if update.callback_query is not None:
                await self._on_button(update)
            elif update.message is not None and update.message.text:
                await self._on_message(update)
        except Exception:
            logger.exception("telegram chat-ops: handling an update failed")

    def _who(self, update: Any) -> tuple[Permission | None, int | None, int | None]:
        user = update.effective_user
        chat = update.effective_chat
        user_id = user.id if user is not None else None
        chat_id = chat.id if chat is not None else None
        private = chat is not None and chat.type == "private"
        return (
            self.access.permission(user_id, chat_id, private=private),
            user_id,
            chat_id,
        )

    def _ignore(self, what: str, user: int | None, chat: int | None) -> None:
        self.ignored += 1
        logger.warning(
            "telegram chat-ops: ignored a %s from user %s in chat %s (not allowed)",
            what,
            user,
            chat,
        )

    @staticmethod
    def _actor(update: Any) -> str:
        user = update.effective_user
        if user is None:
            return "unknown"
        return f"@{user.username}" if user.username else str(user.id)

    async def _call(self, request: Callable[[], Awaitable[object]]) -> None:
        """One Bot API request (a reply, an edit), retried under a short policy."""
        classify = self._classify

        async def attempt() -> None:
            try:
                await request()
            except Exception as exc:
                if classify is None:
                    raise
                raise classify(exc) from None

        await self._retrying(attempt)

    async def _reply(self, chat: int, text: str) -> None:
        bot = self._bot
        assert bot is not None
        await self._call(
            lambda: bot.send_message(chat, text[:MAX_TEXT], parse_mode="HTML")
        )

    async def _on_message(self, update: Any) -> None:
        message = update.message
        permission, user, chat = self._who(update)
        if permission is None or chat is None:
            self._ignore("message", user, chat)
            return
        text = str(message.text).strip()
        if not text.startswith("/"):
            return  # conversation in an allowed group: not for us
        word, *args = text.split()
        name, _, addressee = word[1:].partition("@")
        me = getattr(self._bot, "username", None) if self._bot is not None else None
        if addressee and me and addressee.lower() != str(me).lower():
            return  # another bot's command
        name = name.lower()
        if name not in COMMANDS:
            chat_type = getattr(update.effective_chat, "type", None)
            if addressee or chat_type == "private":  # in a group, maybe another bot's
                await self._reply(chat, "unknown command; /help lists them")
            return
        needed = COMMANDS[name][0]
        if not Access.allows(permission, needed):
            self.refused += 1
            logger.warning(
                "telegram chat-ops: user %s in chat %s may not /%s (%s)",
                user,
                chat,
                name,
                permission.value,
            )
            await self._reply(
                chat, f"⛔ /{html.escape(name)} needs operator permission"
            )
            return
        self.handled += 1
        reply = await getattr(self, f"_cmd_{name}")(update, chat, args)
        if reply:
            await self._reply(chat, reply)

    # ------------------------------------------------------------ commands
    async def _run(
        self, command: str, *args: Any, update: Any, chat: int
    ) -> dict[str, Any]:
        orchestrator = self.orchestrator
        if orchestrator is None:
            raise _Unavailable()
        actor = self._actor(update)
        return await self._in_thread(
            orchestrator.run_command,
            command,
            *args,
            source="telegram",
            actor=actor,
            meta={"chat": chat},
        )

    async def _record(
        self,
        action: str,
        *,
        agent: str | None,
        update: Any,
        chat: int,
        ok: bool,
        result: str,
    ) -> None:
        orchestrator = self.orchestrator
        if orchestrator is None:
            return
        await self._in_thread(
            orchestrator.record_action,
            action,
            agent=agent,
            source="telegram",
            actor=self._actor(update),
            ok=ok,
            result=result,
            meta={"chat": chat},
        )

    async def _guarded(self, coro: Any) -> str:
        from pyorchestrate.core.errors import ControlError

        try:
            result: str = await coro
        except _Unavailable:
            return "⚠ not connected to an orchestrator"
        except ControlError as exc:
            return f"⚠ {html.escape(str(getattr(exc, 'message', exc)), quote=False)}"
        return result

    async def _cmd_help(self, update: Any, chat: int, args: list[str]) -> str:
        permission, _, _ = self._who(update)
        assert permission is not None
        lines = [
            f"/{name} — {text}"
            for name, (needed, text) in COMMANDS.items()
            if Access.allows(permission, needed)
        ]
        return fit(f"<b>commands</b> ({permission.value})", lines)

    async def _cmd_ps(self, update: Any, chat: int, args: list[str]) -> str:
        async def go() -> str:
            return format_ps(await self._run("ps", update=update, chat=chat))

        return await self._guarded(go())

    async def _cmd_status(self, update: Any, chat: int, args: list[str]) -> str:
        async def go() -> str:
            if not args:
                return format_orchestrator(
                    await self._run("status", update=update, chat=chat)
                )
            data = await self._run("status", args[0], update=update, chat=chat)
            return format_status(args[0], data)

        return await self._guarded(go())

    async def _cmd_history(self, update: Any, chat: int, args: list[str]) -> str:
        try:
            count = int(args[0]) if args else 10
        except ValueError:
            return "usage: /history [N]"
        count = max(1, min(count, 50))

        async def go() -> str:
            return format_history(
                await self._run("history", {"last": count}, update=update, chat=chat)
            )

        return await self._guarded(go())

    async def _lifecycle(
        self, command: str, update: Any, chat: int, args: list[str]
    ) -> str:
        if len(args) != 1:
            return f"usage: /{command} NAME"
        name = args[0]
        return await self._guarded(self._act(command, name, update=update, chat=chat))

    async def _act(self, command: str, name: str, *, update: Any, chat: int) -> str:
        """Run a lifecycle command, then wait (bounded by ``ready_timeout``) for its
        outcome: READY after a start or restart, a final state after a stop."""
        before = await self._run("status", name, update=update, chat=chat)
        await self._run(command, name, update=update, chat=chat)
        actor = html.escape(self._actor(update), quote=False)
        verb = {"restart": "↻ restarted", "start": "▶ started", "stop": "■ stopped"}
        line = f"{verb[command]} by {actor} at {hhmm(self.table.db.clock())}"
        wanted = "READY" if command != "stop" else "TERMINATED"
        state = await self._in_thread(self._wait_settled, name, before, command)
        if state == wanted:
            return line + (", READY again" if command == "restart" else f", {state}")
        return f"{line}, {html.escape(state, quote=False)}"

    def _wait_settled(self, name: str, before: Mapping[str, Any], command: str) -> str:
        """On a worker thread: the agent's state once the command's outcome shows (a
        new start READY, FAILED, …; after a stop, a final state), or what it is when
        ``ready_timeout`` ran out."""
        orchestrator = self.orchestrator
        assert orchestrator is not None
        restarts = before.get("restarts")
        pid = before.get("pid")

        def state() -> tuple[bool, str]:
            data = orchestrator.run_command("status", name)
            current = str(data.get("lifecycle_state"))
            if command == "stop":
                return current in _FINAL, current
            moved = data.get("restarts") != restarts or data.get("pid") != pid
            return moved and current in _SETTLED, current

        retrying = Retrying(
            stop=stop_after_delay(self.ready_timeout),
            wait=wait_fixed(0.05),
            retry=retry_if_result(lambda result: not result[0]),
            retry_error_callback=lambda rs: (
                rs.outcome.result() if rs.outcome else (False, "?")
            ),
        )
        settled, current = retrying(state)
        if settled:
            return current
        goal = "stopped" if command == "stop" else "READY"
        return f"not {goal} after {format_duration(self.ready_timeout)} ({current})"

    async def _cmd_restart(self, update: Any, chat: int, args: list[str]) -> str:
        return await self._lifecycle("restart", update, chat, args)

    async def _cmd_stop(self, update: Any, chat: int, args: list[str]) -> str:
        return await self._lifecycle("stop", update, chat, args)

    async def _cmd_start(self, update: Any, chat: int, args: list[str]) -> str:
        return await self._lifecycle("start", update, chat, args)

    async def _cmd_mute(self, update: Any, chat: int, args: list[str]) -> str:
        if len(args) not in (1, 2):
            return "usage: /mute NAME [1h]"
        try:
            seconds = parse_duration(args[1]) if len(args) == 2 else self.mute_for
        except ValueError:
            return "usage: /mute NAME 1h (e.g. 30m, 2h, 1d)"
        return await self._mute(args[0], seconds, update=update, chat=chat)

    async def _mute(
        self, agent: str, seconds: float, *, update: Any, chat: int, exact: bool = False
    ) -> str:
        """Mute ``agent`` (a glob, as ``notify mute`` takes; ``exact``: the name
        itself, its ``*?[`` escaped, as the button on an alert means it)."""
        actor = self._actor(update)
        reason = f"muted from Telegram by {actor}"
        pattern = glob.escape(agent) if exact else agent
        state = None if self._own_state else self._state
        if state is not None:
            await self._in_thread(
                state.mute, "agent", pattern, duration=seconds, reason=reason
            )
        else:
            try:
                if self._rules is None:
                    raise RuntimeError("no alert rules")
                self._rules.mute(pattern, seconds=seconds, reason=reason)
            except RuntimeError:
                return "⚠ nowhere to keep a mute (no state file, no alert rules)"
        until = hhmm(self.table.db.clock() + seconds)
        result = f"muted for {format_duration(seconds)} (until {until})"
        await self._record(
            "mute", agent=agent, update=update, chat=chat, ok=True, result=result
        )
        return f"🔕 {html.escape(agent)} {result} by {html.escape(actor)}"

    async def _cmd_unmute(self, update: Any, chat: int, args: list[str]) -> str:
        if len(args) != 1:
            return "usage: /unmute NAME"
        agent = args[0]
        state = None if self._own_state else self._state
        if state is not None:
            ended = await self._in_thread(state.unmute, "agent", agent)
        else:
            try:
                ended = self._rules is not None and self._rules.unmute(agent=agent) > 0
            except RuntimeError:  # no alert rules
                ended = False
        result = "unmuted" if ended else "was not muted"
        await self._record(
            "unmute", agent=agent, update=update, chat=chat, ok=ended, result=result
        )
        return f"🔔 {html.escape(agent)} {result}"

    async def _cmd_ack(self, update: Any, chat: int, args: list[str]) -> str:
        reply = update.message.reply_to_message
        alert = None
        if reply is not None:  # /ack in reply to an alert: that one
            alert = self._alert_of_message(chat, reply.message_id)
        if alert is None:
            alert = self.table.latest(chat)
        if alert is None:
            return "nothing to acknowledge"
        return await self._ack(alert, update=update, chat=chat)

    def _alert_of_message(self, chat: int, message_id: int) -> ChatAlert | None:
        rows = self.table.db.read(
            "SELECT id FROM chat_alerts WHERE chat = ? AND message_id = ?",
            (str(chat), message_id),
        )
        return self.table.alert(rows[0][0]) if rows else None

    async def _ack(self, alert: ChatAlert, *, update: Any, chat: int) -> str:
        actor = self._actor(update)
        acked, stopped = self.table.ack(alert.id, actor)
        if not acked:
            return f"already acknowledged by {html.escape(alert.acked_by or '?')}"
        line = (
            f"✔ acknowledged by {html.escape(actor)} at {hhmm(self.table.db.clock())}"
        )
        if stopped:
            line += " (escalation stopped)"
        await self._record(
            "ack", agent=alert.agent, update=update, chat=chat, ok=True, result=line
        )
        await self._annotate(alert.id, line)
        return line

    async def _annotate(self, alert_id: int, line: str) -> None:
        """Add ``line`` to the alert's message (edited in place, buttons kept)."""
        table = self.table
        notes = table.note(alert_id, line)
        alert = table.alert(alert_id)
        bot = self._bot
        if (
            alert is None
            or alert.message_id is None
            or alert.chat is None
            or bot is None
        ):
            return
        text = f"{alert.text or ''}\n\n{notes}"[:MAX_TEXT]
        markup = self.keyboard(
            alert.id, used=alert.used, acked=alert.acked_at is not None
        )
        try:
            chat_id = (
                int(alert.chat) if alert.chat.lstrip("-").isdigit() else alert.chat
            )
            message_id = alert.message_id
            await self._call(
                lambda: bot.edit_message_text(
                    text,
                    chat_id=chat_id,
                    message_id=message_id,
                    parse_mode="HTML",
                    reply_markup=markup,
                )
            )
        except Exception as exc:
            logger.warning(
                "telegram chat-ops: could not edit the alert's message: %s", redact(exc)
            )

    # ------------------------------------------------------------ buttons
    async def _on_button(self, update: Any) -> None:
        query = update.callback_query
        permission, user, chat = self._who(update)
        if permission is None or chat is None:
            self._ignore("button press", user, chat)
            return
        try:
            signed = self.signer.verify(query.data)
        except InvalidToken as exc:
            self.refused += 1
            logger.warning(
                "telegram chat-ops: refused button data from user %s in chat %s: %s",
                user,
                chat,
                exc,
            )
            await query.answer("⚠ this button is not valid (expired or altered)")
            return
        alert = self.table.alert(signed.alert)
        if alert is not None and alert.message_id is None:
            # Telegram may show the message before the bot has its answer (and
            # its id): wait for the send to be recorded, briefly.
            recorded = self._recorded.setdefault(alert.id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(recorded.wait(), 5.0)
            self._recorded.pop(alert.id, None)
            alert = self.table.alert(signed.alert)
        message = query.message
        if (
            alert is None
            or message is None
            or alert.message_id != message.message_id
            or alert.chat != str(chat)
        ):
            self.refused += 1
            logger.warning(
                "telegram chat-ops: refused button data from user %s in chat %s: "
                "not this message's",
                user,
                chat,
            )
            await query.answer("⚠ this button is not valid here")
            return
        if not Access.allows(permission, BUTTONS[signed.action]):
            self.refused += 1
            logger.warning(
                "telegram chat-ops: user %s in chat %s may not %s (%s)",
                user,
                chat,
                signed.action,
                permission.value,
            )
            await query.answer(f"⛔ {signed.action} needs operator permission")
            return
        letter = signed.action[0]
        if signed.action != "log" and not self.table.use(alert.id, letter):
            self.refused += 1
            await query.answer("already done")
            return
        self.handled += 1
        answers = {
            "restart": f"↻ restarting {alert.agent}…",
            "mute": f"🔕 muting {alert.agent}…",
            "ack": "✔ acknowledged",
            "log": "📄 the last lines follow",
        }
        await query.answer(answers[signed.action])
        if signed.action == "ack":
            await self._ack(alert, update=update, chat=chat)
            return
        if signed.action == "log":
            await self._reply(chat, await self._log(alert, update=update, chat=chat))
            return
        if signed.action == "mute":
            line = await self._guarded(
                self._mute(
                    alert.agent or "",
                    self.mute_for,
                    update=update,
                    chat=chat,
                    exact=True,
                )
            )
        else:
            line = await self._guarded(
                self._act("restart", alert.agent or "", update=update, chat=chat)
            )
        if line.startswith("⚠"):  # it did not happen: the button works again
            self.table.unuse(alert.id, letter)
        await self._annotate(alert.id, line)

    async def _log(self, alert: ChatAlert, *, update: Any, chat: int) -> str:
        from ..templates import alert_tail

        name = alert.agent or ""
        tail = ""
        with contextlib.suppress(Exception):
            data = await self._run("status", name, update=update, chat=chat)
            tail = str(data.get("output_tail") or "")
        head = f"📄 <b>{html.escape(name)}</b>"
        if tail.strip():
            return fit(f"{head}: last output", alert_tail(tail).split("\n"), pre=True)
        if alert.error:
            return fit(
                f"{head}: the error", str(alert.error).split("\n")[-30:], pre=True
            )
        return f"{head}: no output kept"


class _Unavailable(Exception):
    """No orchestrator is bound."""


def for_settings(section: Any, notifier: Any) -> None:
    """``[telegram] commands = true``: give the channel built from ``section`` its
    chat-ops (called by :func:`notifiers.settings.build_notifiers`)."""
    if not getattr(section, "commands", False):
        return
    notifier.chatops = ChatOps(
        parse_permissions(
            section.allowed_users, section.allowed_chats, section.permissions
        ),
        ack_timeout=section.ack_timeout,
        action_ttl=section.action_ttl,
    )


def parse_permissions(
    users: Sequence[int], chats: Sequence[int], permissions: Mapping[str, str]
) -> Access:
    """An :class:`Access` from the settings' lists: listed ids are ``read_only``
    unless ``permissions`` says otherwise (keys: the ids as text)."""
    levels = {str(key).strip(): Permission(value) for key, value in permissions.items()}
    return Access(
        users={u: levels.get(str(u), Permission.READ_ONLY) for u in users},
        chats={c: levels.get(str(c), Permission.READ_ONLY) for c in chats},
    )
