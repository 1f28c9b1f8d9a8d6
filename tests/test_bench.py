"""The benchmarks still run: each script, with ``--quick``, exits 0 and prints its table.

Figures are not checked here (speed is measured in bench/, never asserted in tests).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.run_all import BENCHMARKS

BENCH = Path(__file__).resolve().parent.parent / "bench"
HEADER = "| name"


HIGH_PERCENTILE = {
    "bench_chatops.py": "p99",
    "bench_control.py": "p99",
    "bench_notify.py": "p99",
    "bench_schedule.py": "p99",
    "bench_web.py": "p99",
}
"""The upper percentile column of a script's table, if not p95."""


@pytest.mark.slow
@pytest.mark.process
@pytest.mark.parametrize("script", BENCHMARKS)
def test_benchmark_runs_quick(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, output
    header = [line for line in result.stdout.splitlines() if line.startswith(HEADER)]
    assert header, output
    high = HIGH_PERCENTILE.get(script, "p95")
    for column in ("p50", high, "baseline p50", f"baseline {high}", "target"):
        assert column in header[0], output
    assert "child processes left behind: none" in result.stdout, output
    assert "Traceback" not in result.stderr, output
    assert "left behind" not in result.stderr, output


def test_run_all_lists_every_benchmark_script() -> None:
    """Each ``bench_*.py`` is run by run_all.py, and so by the quick test above."""
    scripts = {path.name for path in BENCH.glob("bench_*.py")}
    assert set(BENCHMARKS) == scripts
    listed = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert tuple(listed.stdout.split()) == BENCHMARKS


@pytest.mark.slow
@pytest.mark.process
def test_run_all_runs_what_it_is_given_and_reports_failures() -> None:
    """run_all.py passes its arguments on and sums up the exit codes (each script's
    own run is the quick test above: not run twice here)."""
    chosen = "bench_callbacks.py,bench_fleet.py"
    result = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--only", chosen, "--quick"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, output
    headers = [line for line in result.stdout.splitlines() if line.startswith(HEADER)]
    assert len(headers) == 2, output
    assert "(bench_fleet.py: " in result.stdout, output
    failing = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--only", "bench_fleet.py", "-x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failing.returncode == 1, failing.stderr
    assert "FAILED: bench_fleet.py" in failing.stderr
    unknown = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--only", "bench_nope.py"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert unknown.returncode == 2
    assert "not a benchmark: bench_nope.py" in unknown.stderr


# ---------------------------------------------------------------- walk_alert.py
# Not a timing benchmark (no p50 table): it walks one crash to a Telegram message and
# counts files, file-to-file steps and bounces per thread (issue 14's judge, by script).

MIXIN_CORE = """
from .helper import Helper


class Core(Helper):
    def run(self):
        return self.helper()

    def back(self):
        return 1
"""
MIXIN_HELPER = """
class Helper:
    def helper(self):
        return self.back()
"""
COMPOSED = """
from .part import Part


class Whole:
    def __init__(self):
        self.part = Part()

    def run(self):
        return self.part.work() + self.part.work()
"""
PART = """
class Part:
    def work(self):
        return 1
"""


def _walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]
) -> list:
    """Record main-thread calls into a package made of ``files``; return its bounces."""
    import importlib
    import threading

    from bench import walk_alert

    package = tmp_path / "walkpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, text in files.items():
        (package / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(f"walkpkg.{next(iter(files))[:-3]}")
    root_class = getattr(module, "Core", None) or module.Whole
    recorder = walk_alert.Recorder(root=tmp_path, packages=("walkpkg/",))
    recorder.install()
    try:
        obj = root_class()
        recorder.begin()
        obj.run()
        by_thread = recorder.end()
    finally:
        recorder.uninstall()
        for name in list(sys.modules):
            if name.startswith("walkpkg"):
                del sys.modules[name]
    label = f"main ({threading.current_thread().name})"
    nodes = by_thread.get(label) or next(iter(by_thread.values()))
    calls = [n for n in nodes if not n.before]
    assert walk_alert.steps_of(calls), by_thread
    return walk_alert.bounces_of(calls)


def test_walk_alert_finds_a_class_split_over_two_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bounces = _walk(
        tmp_path, monkeypatch, {"core.py": MIXIN_CORE, "helper.py": MIXIN_HELPER}
    )
    found = {
        (b["class"], b["how"], b["a"].split(":")[0], b["b"].split(":")[0])
        for b in bounces
    }
    core, helper = "walkpkg/core.py", "walkpkg/helper.py"
    # Core.run (core.py) -> Helper.helper (helper.py), back into core.py on return;
    # Helper.helper -> Core.back: core.py entered again by a call
    assert found == {
        ("Core", "return", core, helper),
        ("Core", "call back", helper, core),
    }, bounces


def test_walk_alert_finds_no_bounce_between_composed_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _walk(tmp_path, monkeypatch, {"whole.py": COMPOSED, "part.py": PART}) == []


@pytest.mark.slow
@pytest.mark.process
def test_walk_alert_walks_both_crashes_to_telegram() -> None:
    import json

    result = subprocess.run(
        [sys.executable, str(BENCH / "walk_alert.py"), "--json"],
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, output
    report = json.loads(result.stdout)
    assert report["threads_left"] == [], output
    cases = {case["case"]: case for case in report["cases"]}
    assert set(cases) == {"thread agent raises", "process agent SIGKILLed"}, output
    for case in cases.values():
        threads = {row["thread"].split(" (")[0]: row for row in case["threads"]}
        for role in ("router", "callback", "dispatcher loop"):
            assert role in threads, (role, output)
        # the walk begins where the router reads the agent's link or sentinel ...
        assert threads["router"]["steps"][0]["file"].endswith("router.py"), output
        # ... passes the preset's handler on the callback thread ...
        handler = [s["file"] for s in threads["callback"]["steps"]]
        assert "notifiers/presets/attachment.py" in handler, output
        # ... and ends in the Telegram channel on the dispatcher's loop
        loop = threads["dispatcher loop"]["steps"]
        assert loop[-1]["file"] == "notifiers/channels/telegram.py", output
        assert case["message"].startswith("<b>"), output
        assert case["totals"]["three"]["files"] >= 3, output
