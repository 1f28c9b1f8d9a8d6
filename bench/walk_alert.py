"""Walk one crash to a Telegram message: the files and file-to-file steps per thread.

What issue 14's judge does by reading, measured: a real ``Orchestrator`` with one agent
that fails, attached with the ``errors_only`` preset (``notifiers.presets.attach``) to a
``TelegramNotifier`` pointed at ``notifiers.testing.FakeTelegramServer`` on 127.0.0.1,
rate limits off. Two cases, each with a fresh orchestrator, dispatcher and server:

* ``thread``: a thread agent's ``task()`` raises;
* ``process``: a process agent is killed with SIGKILL.

A profile function on every thread of this process (``threading.setprofile`` and
``sys.setprofile``) records the calls into project code (files under ``pyorchestrate/``
or ``notifiers/``, but not ``notifiers/testing/``, the fake server's own code) from the
moment the error is raised (the kill is sent) until the fake server has received the
``sendMessage``: its reply is held until then, so the window ends at the same point of
the dispatcher's code every run. Start-up and shutdown are outside the window. What the
dispatcher's loop does with the reply, until the ``on_result`` hook got the DELIVERED
result, is recorded apart ("after receipt").

Per thread, it prints:

* **files**: the project files whose code ran on the thread in the window;
* **file steps**: file-to-file steps. Each (file, function) is taken once, at its first
  call (a loop that goes round again, such as the router's deadline tick, or a
  coroutine resumed after each await, is read once, as a reader reads it); consecutive
  calls in the same file are one step; the count is steps - 1 (``--verbose`` lists
  them, each with the line that called into it);
* **cross-file calls**: the distinct (caller's file -> callee's file) pairs, what a
  reader follows from one file into another (a return is not one);
* **calls**: every call into project code (repeats included);
* **bounces**: a call into another file *of the same object* (the same ``self``/
  ``cls``: a class hierarchy split over files, directly or through other objects'
  calls): when it returns, control is back in the first file of that object, A -> B
  -> A ("return"); if B's code (or what it reached) calls into A's file of that object
  again, A is re-entered by a call ("call back"). Handing work to another object and
  coming back is not a bounce.

A generator or coroutine frame that resumes is not a new call. ``--tree`` prints each
thread's call tree, ``--json`` everything as one JSON object, ``--case`` one walk
only. Exits 0 once the walks are done (1 if one fails, or leaves a thread or a child
process behind). About 2 s.
"""

from __future__ import annotations

import argparse
import dis
import inspect
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _stats  # noqa: E402

# pyorchestrate and notifiers are imported inside functions, like the other benchmarks
# (a forkserver child re-runs this file's top level).

PACKAGES = ("pyorchestrate/", "notifiers/")
EXCLUDED = ("notifiers/testing/",)  # the fake server and its helpers
TOKEN = "123456789:AAF-walk-token-not-a-real-one-xyz"  # a fake, for the fake server
CHAT_ID = 4242
SERVERS = ("fake-telegram",)  # the fake server's threads: not the alert's path
WAIT = 10.0  # seconds any single wait may take before the walk fails

ROLES: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("agent", lambda n: n.startswith("pyorchestrate-agent-")),
    ("router", lambda n: n.startswith("pyorchestrate-router-")),
    ("output reader", lambda n: n.startswith("pyorchestrate-output-")),
    ("callback", lambda n: "-callbacks-" in n),
    ("pipeline timer", lambda n: n.startswith("notifiers-pipeline-")),
    ("doorbell", lambda n: n.endswith("-doorbell")),
    ("dispatcher loop", lambda n: n.startswith("notifiers-dispatch")),
    ("main", lambda n: n == "MainThread"),
)
"""Threads by role, in the order an alert meets them (thread names from the code)."""


def role_of(thread_name: str) -> str:
    for role, matches in ROLES:
        if matches(thread_name):
            return role
    return thread_name


# ---------------------------------------------------------------- recording


@dataclass(eq=False)
class Node:
    """One call into project code (a node of the thread's call tree)."""

    file: str  # relative to the repository
    function: str  # co_qualname
    line: int  # the def line
    obj: int | None  # id() of the frame's self/cls; None for a plain function
    cls: str | None  # that object's class name
    parent: Node | None  # the nearest project frame below it
    call_line: int | None  # the line of the parent that called it
    before: bool  # already running when the window opened (a frame seen late)
    at: float = 0.0  # perf_counter() when it was seen

    @property
    def site(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def called_from(self) -> str | None:
        if self.parent is None:
            return None
        return f"{self.parent.file}:{self.call_line}"


class Recorder:
    """The profile function: builds each thread's tree of project calls while on.

    A generator or coroutine frame that resumes is not a new call (``f_lasti`` past
    its first ``RESUME``): awaiting I/O resumes the same chain of frames many times.
    """

    def __init__(self, root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> None:
        self._root = str(root) + os.sep
        self._packages = packages
        self._codes: dict[CodeType, tuple[str, str, int, int] | None] = {}
        self._nodes: dict[int, list[Node]] = {}
        self._names: dict[int, str] = {}
        self._frames: dict[int, tuple[FrameType, Node]] = {}
        self._keep: list[object] = []  # objects seen, alive so id() stays unique
        self.on = False
        self.began = self.ended = 0.0

    # -- control
    def install(self) -> None:
        threading.setprofile(self._profile)
        sys.setprofile(self._profile)

    def uninstall(self) -> None:
        self.on = False
        threading.setprofile(None)
        sys.setprofile(None)

    def begin(self) -> None:
        self._nodes, self._names, self._frames = {}, {}, {}
        self.began = time.perf_counter()
        self.on = True

    def end(self) -> dict[str, list[Node]]:
        """Stop; each thread's nodes in call order, by "role (thread name)"."""
        self.on = False
        self.ended = time.perf_counter()
        by_thread = {self._names[i]: n for i, n in self._nodes.items() if n}
        self._frames = {}
        self._keep.clear()
        return by_thread

    # -- the profile function (cheap while off; must never raise)
    def _info(self, code: CodeType) -> tuple[str, str, int, int] | None:
        try:
            return self._codes[code]
        except KeyError:
            pass
        info: tuple[str, str, int, int] | None = None
        path = code.co_filename
        if path.startswith(self._root):
            rel = path[len(self._root) :].replace(os.sep, "/")
            if rel.startswith(self._packages) and not rel.startswith(EXCLUDED):
                first = sys.maxsize  # a plain function: every call event is a call
                if code.co_flags & _RESUMABLE:
                    first = next(
                        i.offset
                        for i in dis.get_instructions(code)
                        if i.opname == "RESUME"
                    )
                info = (rel, code.co_qualname, code.co_firstlineno, first)
        self._codes[code] = info
        return info

    def _owner(self, frame: FrameType) -> tuple[int | None, str | None]:
        """The object whose code this is: its ``self``/``cls`` argument, or the
        ``self`` a closure (``Class.method.<locals>.f``) was made with."""
        code = frame.f_code
        if code.co_argcount and code.co_varnames[0] in ("self", "cls"):
            name = code.co_varnames[0]
        elif "self" in code.co_freevars:
            name = "self"
        else:
            return None, None
        obj = frame.f_locals.get(name)
        if obj is None:
            return None, None
        self._keep.append(obj)
        cls = obj if isinstance(obj, type) else type(obj)
        return id(obj), cls.__qualname__

    def _project_parent(self, frame: FrameType) -> FrameType | None:
        parent = frame.f_back
        while parent is not None and self._info(parent.f_code) is None:
            parent = parent.f_back
        return parent

    def _node(self, frame: FrameType, nodes: list[Node], before: bool) -> Node:
        """The node of ``frame``, made (with its unknown ancestors) if new."""
        known = self._frames.get(id(frame))
        if known is not None and known[0] is frame:
            return known[1]
        info = self._info(frame.f_code)
        assert info is not None
        parent_frame = self._project_parent(frame)
        parent = None if parent_frame is None else self._node(parent_frame, nodes, True)
        obj, cls = self._owner(frame)
        node = Node(
            info[0],
            info[1],
            info[2],
            obj,
            cls,
            parent,
            None if parent_frame is None else parent_frame.f_lineno,
            before,
            time.perf_counter(),
        )
        self._frames[id(frame)] = (frame, node)
        nodes.append(node)
        return node

    def _profile(self, frame: FrameType, event: str, arg: object) -> None:
        if not self.on or event != "call":
            return
        info = self._info(frame.f_code)
        ident = threading.get_ident()
        nodes = self._nodes.get(ident)
        if info is None:
            # Outside project code. The first time on a thread, note the project
            # frame it runs under: a loop that only calls the standard library in
            # the window (e.g. a thread that wakes the dispatcher's loop) shows too.
            if nodes is None and ident not in self._names:
                self._names[ident] = ""  # looked once
                running = self._project_parent(frame)
                name = threading.current_thread().name
                if running is not None and not name.startswith(SERVERS):
                    self._names[ident] = f"{role_of(name)} ({name})"
                    nodes = self._nodes[ident] = []
                    self._node(running, nodes, before=True)
            return
        if nodes is None:
            name = threading.current_thread().name
            if name.startswith(SERVERS):
                return
            nodes = self._nodes[ident] = []
            self._names[ident] = f"{role_of(name)} ({name})"
        # a resumed generator/coroutine frame is not a new call
        self._node(frame, nodes, before=frame.f_lasti > info[3])


_RESUMABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


# ---------------------------------------------------------------- analysis


@dataclass
class Step:
    file: str
    functions: list[str] = field(default_factory=list)
    entered_from: str | None = None  # the call site that led into this file

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "functions": self.functions,
            "entered_from": self.entered_from,
        }


def steps_of(calls: list[Node]) -> list[Step]:
    """Calls in order; consecutive calls in the same file are one step."""
    steps: list[Step] = []
    for node in calls:
        if not steps or steps[-1].file != node.file:
            steps.append(Step(node.file, entered_from=node.called_from))
        if node.function not in steps[-1].functions:
            steps[-1].functions.append(node.function)
    return steps


def first_calls(calls: list[Node]) -> list[Node]:
    """Each (file, function) once, at its first call: a loop that goes round again
    (the router's tick, a coroutine's turns) is read once, as a reader reads it."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for node in calls:
        if (node.file, node.function) not in seen:
            seen.add((node.file, node.function))
            kept.append(node)
    return kept


def edges_of(calls: list[Node]) -> list[str]:
    """The distinct calls from one file into another, in order: what a reader follows."""
    edges: dict[str, None] = {}
    for node in calls:
        if node.parent is not None and node.parent.file != node.file:
            edges[f"{node.parent.file} -> {node.file}"] = None
    return list(edges)


def bounces_of(calls: list[Node]) -> list[dict[str, Any]]:
    """Calls into another file of the same object (same ``self``/``cls``).

    When the callee returns, control is back in the caller's file: A -> B -> A inside
    one object ("return"). When B's code (or what it reached) calls A's code of the
    same object again, it is A -> B -> A by a call ("call back").
    """
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    for node in calls:
        if node.obj is None:
            continue
        chain = []  # ancestors up to the nearest one of the same object
        owner = node.parent
        while owner is not None and owner.obj != node.obj:
            chain.append(owner)
            owner = owner.parent
        if owner is None or owner.file == node.file:
            continue
        # the call in owner's file that led to node
        leave = chain[-1] if chain else node
        earlier = owner.parent
        while earlier is not None and not (
            earlier.obj == node.obj and earlier.file == node.file
        ):
            earlier = earlier.parent
        how = "call back" if earlier is not None else "return"
        through = [f"{c.cls or c.function}" for c in reversed(chain)]
        key = (
            node.cls or "?",
            owner.file,
            owner.function,
            node.file,
            node.function,
            how,
        )
        if key in found:
            found[key]["times"] += 1
            continue
        found[key] = {
            "class": node.cls or "?",
            "how": how,
            "a": f"{owner.file}:{leave.call_line} ({owner.function})",
            "b": f"{node.file}:{node.line} ({node.function})",
            "back": (
                f"{earlier.file}:{earlier.line} ({earlier.function}) called again"
                if earlier is not None
                else f"{owner.file}:{leave.call_line} when it returns"
            ),
            "through": through,
            "times": 1,
        }
    return list(found.values())


def thread_order(label: str) -> int:
    role = label.split(" (", 1)[0]
    for index, (name, _) in enumerate(ROLES):
        if name == role:
            return index
    return len(ROLES)


def tree_of(calls: list[Node], nodes: list[Node]) -> list[str]:
    """The call tree, one line per call (frames running before the window marked)."""
    depth: dict[int, int] = {}
    lines = []
    for node in nodes:
        d = 0 if node.parent is None else depth.get(id(node.parent), 0) + 1
        depth[id(node)] = d
        mark = " (running)" if node.before else ""
        lines.append(f"{'  ' * d}{node.file}:{node.line} {node.function}{mark}")
    return lines


def analyse(by_thread: dict[str, list[Node]], began: float) -> list[dict[str, Any]]:
    rows = []
    for label in sorted(by_thread, key=lambda t: (thread_order(t), t)):
        nodes = by_thread[label]
        calls = [n for n in nodes if not n.before]
        sequence = steps_of(calls)
        steps = steps_of(first_calls(calls))
        files = sorted({n.file for n in nodes})
        edges = edges_of(calls)
        rows.append(
            {
                "thread": label,
                "files": len(files),
                "file_steps": max(len(steps) - 1, 0),
                "sequence_steps": max(len(sequence) - 1, 0),
                "cross_file_calls": len(edges),
                "calls": len(calls),
                "first_ms": round((nodes[0].at - began) * 1000, 2),
                "last_ms": round((nodes[-1].at - began) * 1000, 2),
                "file_list": files,
                "steps": [s.as_dict() for s in steps],
                "cross_file_call_list": edges,
                "bounces": bounces_of(calls),
                "tree": tree_of(calls, nodes),
            }
        )
    return rows


# ---------------------------------------------------------------- the walks


@contextmanager
def telegram_alerts(name: str) -> Iterator[tuple[Any, Any, Any, threading.Event]]:
    """A fresh orchestrator with the errors_only preset attached to Telegram.

    Yields (orchestrator, server, attachment, delivered); detaches and shuts down
    on the way out, whatever happens.
    """
    from notifiers import DeliveryResult, DeliveryStatus, TelegramNotifier
    from notifiers.presets import attach
    from notifiers.testing import FakeTelegramServer
    from pyorchestrate import Orchestrator

    delivered = threading.Event()

    def on_result(result: DeliveryResult) -> None:
        if result.status is DeliveryStatus.DELIVERED:
            delivered.set()

    config = Orchestrator.Config(enable_command_interface=False, agent_stop_timeout=5.0)
    with (
        FakeTelegramServer() as server,
        Orchestrator(name, config) as orchestrator,
    ):
        # the sendMessage is held until the window is closed (see walk())
        server.queue_reply(hold=True, method="sendMessage")
        telegram = TelegramNotifier(TOKEN, chat_id=CHAT_ID, base_url=server.base_url)
        attachment = attach(
            orchestrator,
            "errors_only",
            telegram,
            rate_limits=False,
            on_result=[on_result],
        )
        try:
            yield orchestrator, server, attachment, delivered
        finally:
            server.release()
            attachment.detach(timeout=5.0)


def walk(
    recorder: Recorder,
    server: Any,
    delivered: threading.Event,
    trigger: Callable[[], None],
) -> dict[str, Any]:
    """Run ``trigger`` (it calls recorder.begin() at the crash), record to receipt."""
    trigger()
    server.wait_for(1, timeout=WAIT)  # the sendMessage has reached the server
    window = recorder.end()
    began, window_ms = recorder.began, (recorder.ended - recorder.began) * 1000
    recorder.begin()
    server.release()  # now the server answers
    if not delivered.wait(WAIT):
        raise TimeoutError("no DELIVERED result after the server answered")
    after = recorder.end()
    return {
        "window_ms": round(window_ms, 2),
        "threads": analyse(window, began),
        "after_receipt": analyse(after, began),
    }


def settle() -> None:
    """Let start-up's messages and callbacks finish before the window opens."""
    time.sleep(0.3)


def walk_thread_agent(recorder: Recorder) -> dict[str, Any]:
    from pyorchestrate import OneShotThreadAgent

    go, waiting = threading.Event(), threading.Event()

    class Crashes(OneShotThreadAgent):
        def task(self) -> None:
            waiting.set()
            if not go.wait(WAIT):
                return
            recorder.begin()
            raise ConnectionError("database at db.internal:5432 refused the connection")

    with telegram_alerts("walk-thread") as (orchestrator, server, _, delivered):
        orchestrator.register_agent(Crashes, "etl")
        orchestrator.start_agent("etl")
        if not waiting.wait(WAIT):
            raise TimeoutError("the thread agent did not start")
        settle()
        result = walk(recorder, server, delivered, go.set)
        text = server.messages[0]["text"]
    result["case"] = "thread agent raises"
    result["message"] = text.splitlines()[0] if text else ""
    return result


def walk_process_agent(recorder: Recorder) -> dict[str, Any]:
    from bench._agents import IdleProcess
    from pyorchestrate import OrchestratorEvent

    with telegram_alerts("walk-process") as (orchestrator, server, _, delivered):
        started = _stats.Arrival()
        orchestrator.register_event(OrchestratorEvent.AGENT_STARTED, started)
        orchestrator.register_agent(IdleProcess, "etl")
        orchestrator.start_agent("etl")
        started.wait("AGENT_STARTED")
        pid = orchestrator.get_agent("etl").pid
        if pid is None or pid == os.getpid():
            raise RuntimeError(f"no child pid to kill (got {pid})")
        settle()

        def kill() -> None:
            recorder.begin()
            os.kill(pid, signal.SIGKILL)

        result = walk(recorder, server, delivered, kill)
        text = server.messages[0]["text"]
    result["case"] = "process agent SIGKILLed"
    result["message"] = text.splitlines()[0] if text else ""
    return result


# ---------------------------------------------------------------- output


THREE = ("router", "callback", "dispatcher loop")
"""The threads issue 14 counts (a thread agent's own thread is counted apart)."""


def totals(rows: list[dict[str, Any]], roles: tuple[str, ...] = ()) -> dict[str, int]:
    """Distinct files and summed counts over the threads of ``roles`` (all if empty)."""
    chosen = [r for r in rows if not roles or r["thread"].split(" (")[0] in roles]
    files: set[str] = set()
    for row in chosen:
        files.update(row["file_list"])
    return {
        "files": len(files),
        "file_steps": sum(r["file_steps"] for r in chosen),
        "cross_file_calls": sum(r["cross_file_calls"] for r in chosen),
        "calls": sum(r["calls"] for r in chosen),
        "bounces": sum(len(r["bounces"]) for r in chosen),
    }


COLUMNS = (
    "files",
    "file steps",
    "cross-file calls",
    "calls",
    "bounces",
    "ms after the crash",
)


def print_case(case: dict[str, Any], verbose: bool, tree: bool) -> None:
    print(
        f"\n### {case['case']}: {case['window_ms']:.1f} ms from the crash to the "
        "sendMessage (profiled)"
    )
    print(f"message: {case['message']!r}")
    print("(totals: distinct files over the threads; the other columns summed)\n")
    width = 36
    print(f"| {'thread':<{width}} | " + " | ".join(COLUMNS) + " |")
    print(
        f"|{'-' * (width + 2)}|" + "|".join("-" * (len(c) + 2) for c in COLUMNS) + "|"
    )

    def row(label: str, *cells: object) -> None:
        text = " | ".join(
            f"{c!s:>{len(h)}}" for c, h in zip(cells, COLUMNS, strict=True)
        )
        print(f"| {label:<{width}} | {text} |")

    for r in case["threads"]:
        row(
            r["thread"].split(" (")[0],
            r["files"],
            r["file_steps"],
            r["cross_file_calls"],
            r["calls"],
            len(r["bounces"]),
            f"{r['first_ms']:.1f}-{r['last_ms']:.1f}",
        )
    for label, key in (("router + callback + loop", "three"), ("all threads", "all")):
        t = case["totals"][key]
        row(
            label,
            t["files"],
            t["file_steps"],
            t["cross_file_calls"],
            t["calls"],
            t["bounces"],
            "",
        )
    for r in case["after_receipt"]:
        row(
            f"after receipt: {r['thread'].split(' (')[0]}",
            r["files"],
            r["file_steps"],
            r["cross_file_calls"],
            r["calls"],
            len(r["bounces"]),
            f"{r['first_ms']:.1f}-{r['last_ms']:.1f}",
        )
    bounces = [(r["thread"], b) for r in case["threads"] for b in r["bounces"]]
    bounces += [
        (f"after receipt: {r['thread']}", b)
        for r in case["after_receipt"]
        for b in r["bounces"]
    ]
    print("\nbounces (one object's code: file A -> file B -> back into A):")
    if not bounces:
        print("  none")
    for thread, b in bounces:
        through = f" through {' -> '.join(b['through'])}" if b["through"] else ""
        print(
            f"  [{thread.split(' (')[0]}] {b['class']} ({b['how']}): {b['a']}"
            f"{through} -> {b['b']} -> back at {b['back']} ({b['times']}x)"
        )
    sections = [("steps", case["threads"]), ("after receipt", case["after_receipt"])]
    for title, rows in sections if verbose else ():
        for r in rows:
            print(f"\n{title}, {r['thread']}:")
            for n, s in enumerate(r["steps"], 1):
                origin = f"  <- {s['entered_from']}" if s["entered_from"] else ""
                print(f"  {n:>2}. {s['file']}: {', '.join(s['functions'])}{origin}")
            print("  cross-file calls: " + "; ".join(r["cross_file_call_list"]))
    for title, rows in sections if tree else ():
        for r in rows:
            print(f"\ncall tree ({title}), {r['thread']}:")
            for line in r["tree"]:
                print(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="print every step")
    parser.add_argument(
        "--tree", action="store_true", help="print each thread's call tree"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--case",
        choices=["thread", "process", "both"],
        default="both",
        help="which walk (default: both)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="accepted for run_all; the walk is quick"
    )
    args = parser.parse_args(argv)
    before = {t.ident for t in threading.enumerate()}
    recorder = Recorder()
    recorder.install()  # before any thread of the walk starts; off until begin()
    cases = []
    try:
        runs = {"thread": [walk_thread_agent], "process": [walk_process_agent]}
        for run in runs.get(args.case, [walk_thread_agent, walk_process_agent]):
            case = run(recorder)
            case["totals"] = {
                "three": totals(case["threads"], THREE),
                "all": totals(case["threads"]),
            }
            cases.append(case)
    finally:
        recorder.uninstall()
    left = [
        t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()
    ]
    if args.json:
        print(json.dumps({"cases": cases, "threads_left": left}, indent=2))
    else:
        _stats.print_title(
            "The alert path, walked: files and file-to-file steps per thread",
            agents="a thread agent raises; a process agent is SIGKILLed",
            channel="TelegramNotifier -> FakeTelegramServer on 127.0.0.1, no rate limits",
        )
        for case in cases:
            print_case(case, args.verbose, args.tree)
    if left:
        print(f"threads left behind: {left}", file=sys.stderr)
        return 1
    if args.json:
        return 1 if _stats.leftover_children() else 0
    return _stats.finish()


if __name__ == "__main__":
    sys.exit(main())
