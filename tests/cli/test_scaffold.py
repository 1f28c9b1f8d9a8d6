"""``pyorchestrate create APP``: the skeleton, re-runs, ``--force``, and that it runs.

The generated application is run for real: its own tests (``python -m pytest tests``)
and ``python starter.py`` (STOP_ON_EMPTY: it ends by itself) with no alert channel,
then ``starter.py --fail`` with its alert channel pointed at a local fake webhook
through ``PYORCHESTRATE_NOTIFY_WEBHOOK__URL``, then ``starter.py --daemon`` driven by
the CLI as the next-step hint says.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from notifiers.testing import WebhookSink
from pyorchestrate.cli._scaffold import create_app, install_command
from pyorchestrate.testing import wait_until

from ._support import ENTRY_POINTS, CliProcess, cli_env, run_cli
from .conftest import Invoke

ROOT = Path(__file__).resolve().parents[2]
FILES = (
    "models/__init__.py",
    "models/agents.py",
    "configurations/__init__.py",
    "configurations/settings.py",
    "configurations/alerts.py",
    "starter.py",
    "tests/test_app.py",
)


def _no_channels(env: dict[str, str]) -> dict[str, str]:
    """``env`` without any ``PYORCHESTRATE_NOTIFY_*`` setting."""
    return {k: v for k, v in env.items() if not k.startswith("PYORCHESTRATE_NOTIFY_")}


def _actions(stdout: str) -> dict[str, str]:
    """``{path: created|kept|replaced}`` from the table ``create`` prints."""
    found = {}
    for line in stdout.splitlines():
        cells = line.split()
        if len(cells) == 2 and cells[1] in FILES:
            found[cells[1]] = cells[0]
    return found


def test_create_writes_the_skeleton(tmp_path: Path, cli: Invoke) -> None:
    root = tmp_path / "demo_app"
    result = cli("create", root)
    assert result.exit_code == 0, result.stderr
    assert _actions(result.stdout) == dict.fromkeys(FILES, "created")
    for relative in FILES:
        path = root / relative
        assert path.is_file(), relative
        compile(path.read_text(), str(path), "exec")  # valid Python
    starter = (root / "starter.py").read_text()
    assert (
        "enable_command_interface" in (root / "configurations/settings.py").read_text()
    )
    assert "orchestrator.start()" in starter and "orchestrator.join()" in starter
    assert "attach_alerts(orchestrator)" in starter
    alerts = (root / "configurations/alerts.py").read_text()
    assert "attach_from_settings" in alerts and 'PRESET = "errors_only"' in alerts
    # notifiers only inside the function, so the app runs without the notify extra.
    for relative in FILES:
        for line in (root / relative).read_text().splitlines():
            if line.startswith(("import notifiers", "from notifiers")):
                raise AssertionError(f"{relative}: top-level {line!r}")
    assert "Next:" in result.stdout and "python starter.py" in result.stdout
    # The hints: the ps line goes with the daemon (plain starter.py exits by itself),
    # and the install lines name this checkout (pyorchestrate is on no index).
    [ps_line] = [
        line for line in result.stdout.splitlines() if "pyorchestrate ps" in line
    ]
    assert "python starter.py --daemon" in ps_line and "Ctrl+C" in ps_line
    assert f"pip install -e '{ROOT}[notify]'" in result.stdout
    assert f"pip install -e '{ROOT}[demo]'" in result.stdout
    assert "pyorchestrate[notify]" not in result.stdout
    assert "pyorchestrate[notify]" not in alerts
    assert f"INSTALL_NOTIFY = \"pip install -e '{ROOT}[notify]'\"" in alerts


def test_create_json(tmp_path: Path, cli: Invoke) -> None:
    root = tmp_path / "demo_app"
    result = cli("create", root, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "root": str(root),
        "files": dict.fromkeys(FILES, "created"),
    }


def test_a_rerun_keeps_every_file(tmp_path: Path, cli: Invoke) -> None:
    root = tmp_path / "demo_app"
    assert cli("create", root).exit_code == 0
    starter = root / "starter.py"
    starter.write_text(starter.read_text() + "\n# my change\n")
    (root / "models/agents.py").unlink()
    result = cli("create", root)
    assert result.exit_code == 0, result.stderr
    expected = dict.fromkeys(FILES, "kept")
    expected["models/agents.py"] = "created"
    assert _actions(result.stdout) == expected
    assert starter.read_text().endswith("# my change\n")
    assert (root / "models/agents.py").is_file()


def test_force_replaces_the_files(tmp_path: Path, cli: Invoke) -> None:
    root = tmp_path / "demo_app"
    assert cli("create", root).exit_code == 0
    starter = root / "starter.py"
    original = starter.read_text()
    starter.write_text(original + "\n# my change\n")
    result = cli("create", root, "--force")
    assert result.exit_code == 0, result.stderr
    assert _actions(result.stdout) == dict.fromkeys(FILES, "replaced")
    assert starter.read_text() == original


@pytest.mark.parametrize("name", ["bad name", "1app", "class", "app!", "a.b"])
def test_an_unusable_name_is_a_usage_error(
    tmp_path: Path, cli: Invoke, name: str
) -> None:
    result = cli("create", tmp_path / name)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error:")
    assert repr(name) in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_an_existing_file_is_a_usage_error(tmp_path: Path, cli: Invoke) -> None:
    target = tmp_path / "app"
    target.write_text("not a directory")
    result = cli("create", target)
    assert result.exit_code == 2
    assert str(target) in result.stderr
    assert target.read_text() == "not a directory"


@pytest.mark.slow
@pytest.mark.process
@pytest.mark.parametrize("name", ["demo_app", "my-app"])
def test_the_generated_app_runs_as_generated(
    tmp_path: Path, short_tmp: Path, name: str
) -> None:
    made = subprocess.run(
        [*ENTRY_POINTS["script"], "create", name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=cli_env(),
    )
    assert made.returncode == 0, made.stderr
    root = tmp_path / name
    # Its own default socket and output files live in private directories of this
    # test.
    state = tmp_path / "state"
    env = _no_channels(
        cli_env(XDG_RUNTIME_DIR=str(short_tmp), XDG_STATE_HOME=str(state))
    )
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout  # the alert test too: notifiers is installed
    starter = subprocess.run(
        [sys.executable, "starter.py"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert starter.returncode == 0, starter.stdout + starter.stderr
    socket_path = short_tmp / "pyorchestrate" / f"{name}.sock"
    assert f"socket: {socket_path}" in starter.stdout
    assert f"{name} finished" in starter.stdout
    # The worker's output goes to its file (issue 15), not to the starter's stdout.
    output = state / "pyorchestrate" / "logs" / name / "worker.stdout.log"
    assert "worker: unit 5 of 5" in output.read_text()
    assert "No alert channel configured" in starter.stdout  # the hint
    assert "ERROR" not in starter.stdout and "Traceback" not in starter.stderr
    assert not socket_path.exists()


@pytest.mark.slow
@pytest.mark.process
def test_the_generated_daemon_is_driven_by_the_cli(
    tmp_path: Path, short_tmp: Path, cli: Invoke
) -> None:
    """The hint's flow: starter.py --daemon, then `pyorchestrate ps`, then shutdown."""
    assert cli("create", tmp_path / "demo_app").exit_code == 0
    env = _no_channels(cli_env(XDG_RUNTIME_DIR=str(short_tmp)))
    socket_path = short_tmp / "pyorchestrate" / "demo_app.sock"
    argv = [sys.executable, "starter.py", "--daemon"]
    with CliProcess(argv, env=env, cwd=tmp_path / "demo_app") as app:
        app.read_until(lambda out: "demo_app is running" in out, 30)
        assert wait_until(socket_path.exists, 15)
        # No --socket: the only socket in the private directory is found.
        ps = run_cli(ENTRY_POINTS["script"], "ps", "--json", env=env)
        assert ps.returncode == 0, ps.stderr
        names = {a["name"] for a in json.loads(ps.stdout)["agents"]}
        assert names == {"worker"}
        down = run_cli(ENTRY_POINTS["script"], "shutdown", env=env)
        assert down.returncode == 0, down.stderr
        code = app.proc.wait(30)
        out = app.drain()
        err = app.stderr()
    assert code == 0, (out, err)
    assert "demo_app finished" in out
    assert "Traceback" not in err
    assert not socket_path.exists()


@pytest.mark.slow
@pytest.mark.process
def test_the_generated_app_alerts_through_the_channel_in_its_environment(
    tmp_path: Path, short_tmp: Path, cli: Invoke
) -> None:
    assert cli("create", tmp_path / "demo_app").exit_code == 0
    with WebhookSink() as sink:
        env = _no_channels(cli_env(XDG_RUNTIME_DIR=str(short_tmp)))
        env["PYORCHESTRATE_NOTIFY_WEBHOOK__URL"] = sink.json_url("/po-scaffold-alerts")
        env["PYORCHESTRATE_NOTIFY_STATE_PATH"] = "none"
        starter = subprocess.run(
            [sys.executable, "starter.py", "--fail"],
            cwd=tmp_path / "demo_app",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
        # The worker failed: starter.py exits 1 (sys.exit(orchestrator.exit_code)).
        assert starter.returncode == 1, starter.stdout + starter.stderr
        [request] = sink.wait_for(1, timeout=10)
    assert "Alerts: errors_only on webhook" in starter.stdout
    assert "ERROR: worker failed: RuntimeError: unit 3 failed" in starter.stdout
    assert "demo_app finished" in starter.stdout
    # The failure is logged once, with its traceback, through starter's basicConfig.
    assert starter.stderr.count("Traceback (most recent call last):") == 1
    assert "agent 'worker' failed: RuntimeError: unit 3 failed" in starter.stderr
    assert request.path == "/po-scaffold-alerts"
    assert request.json["title"] == "✖ worker failed"
    assert "RuntimeError: unit 3 failed" in request.json["message"]


def _fake_install(site: Path, direct_url: dict[str, object] | None) -> Path:
    """A site directory with a pyorchestrate dist-info (as pip leaves it) and package."""
    info = site / "pyorchestrate-0.4.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pyorchestrate\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    (site / "pyorchestrate").mkdir()
    return site / "pyorchestrate"


def test_install_command_from_the_checkout() -> None:
    assert install_command("notify", package_dir=ROOT / "pyorchestrate") == (
        f"pip install -e '{ROOT}[notify]'"
    )


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        (  # pip install /src/my checkout (a wheel built from a directory)
            {"url": "file:///src/my%20checkout", "dir_info": {}},
            "pip install '/src/my checkout[demo]'",
        ),
        (  # pip install git+https://...
            {
                "url": "https://git.example.invalid/pyorchestrate.git",
                "vcs_info": {"vcs": "git", "commit_id": "0" * 40},
            },
            "pip install 'pyorchestrate[demo] @ git+https://git.example.invalid/pyorchestrate.git'",
        ),
        (None, "pip install 'pyorchestrate[demo]'"),  # from an index, some day
    ],
    ids=["directory", "vcs", "index"],
)
def test_install_command_names_where_it_was_installed_from(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    direct_url: dict[str, object] | None,
    expected: str,
) -> None:
    package_dir = _fake_install(tmp_path / "site", direct_url)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))  # found before this checkout
    assert install_command("demo", package_dir=package_dir) == expected


@pytest.mark.slow
def test_the_install_hints_are_commands_pip_accepts(tmp_path: Path) -> None:
    """Each printed ``pip install`` line resolves (a dry run: nothing is installed)."""
    for extra in ("notify", "demo"):
        argv = shlex.split(install_command(extra))
        assert argv[:2] == ["pip", "install"]
        done = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "install", "--dry-run", "--quiet"),
                *("--disable-pip-version-check", *argv[2:]),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (argv, done.stderr)


def test_the_alert_test_names_the_extra_that_has_what_it_needs(tmp_path: Path) -> None:
    """The generated alert test needs notifiers.testing (aiosmtpd) and the channels:
    its skip reason names the demo extra, and that extra has both."""
    create_app(tmp_path / "demo_app")
    test_source = (tmp_path / "demo_app" / "tests" / "test_app.py").read_text()
    assert f"pip install -e '{ROOT}[demo]'" in test_source
    assert "aiosmtpd" in test_source
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(req.startswith("aiosmtpd") for req in extras["demo"])
    assert "pyorchestrate[notify]" in extras["demo"]


@pytest.mark.slow
@pytest.mark.process
def test_the_generated_alert_test_is_skipped_with_its_reason_without_aiosmtpd(
    tmp_path: Path, short_tmp: Path, cli: Invoke
) -> None:
    assert cli("create", tmp_path / "demo_app").exit_code == 0
    blocker = tmp_path / "no_aiosmtpd" / "aiosmtpd"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'aiosmtpd'\", name='aiosmtpd')\n"
    )
    env = _no_channels(cli_env(XDG_RUNTIME_DIR=str(short_tmp)))
    env["PYTHONPATH"] = str(blocker.parent)
    tests = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
        ],
        cwd=tmp_path / "demo_app",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "1 passed, 1 skipped" in tests.stdout
    assert f"pip install -e '{ROOT}[demo]'" in tests.stdout


@pytest.mark.slow
@pytest.mark.process
def test_the_generated_daemon_stops_on_ctrl_c(
    tmp_path: Path, short_tmp: Path, cli: Invoke
) -> None:
    """``python starter.py --daemon`` stays up after its worker is done, until Ctrl+C."""
    assert cli("create", tmp_path / "demo_app").exit_code == 0
    state = tmp_path / "state"
    env = _no_channels(
        cli_env(XDG_RUNTIME_DIR=str(short_tmp), XDG_STATE_HOME=str(state))
    )
    socket_path = short_tmp / "pyorchestrate" / "demo_app.sock"
    output = state / "pyorchestrate" / "logs" / "demo_app" / "worker.stdout.log"
    argv = [sys.executable, "starter.py", "--daemon"]
    with CliProcess(argv, env=env, cwd=tmp_path / "demo_app") as app:
        # The worker's output goes to its file (issue 15).
        assert wait_until(
            lambda: output.exists() and "worker: unit 5 of 5" in output.read_text(),
            30,
        )
        # The worker is done, and the daemon is still up and answering.
        assert wait_until(
            lambda: (
                run_cli(ENTRY_POINTS["script"], "ps", "--json", env=env).returncode == 0
            ),
            15,
        )
        assert app.proc.poll() is None
        app.proc.send_signal(signal.SIGINT)
        code = app.proc.wait(30)
        out = app.drain()
        err = app.stderr()
    assert code in (0, 130), (code, out, err)  # 130: interrupted (issue 13's codes)
    assert "demo_app finished" in out
    assert "Traceback" not in err
    assert not socket_path.exists()
