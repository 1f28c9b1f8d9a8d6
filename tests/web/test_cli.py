"""``pyorchestrate web`` and ``pyorchestrate-web`` as a user runs them."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .conftest import Fleet

BIN = Path(sys.executable).parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYORCHESTRATE_")}
    return {**env, **extra}


ENTRY_POINTS = pytest.mark.parametrize(
    "argv",
    [
        [str(BIN / "pyorchestrate"), "web"],
        [str(BIN / "pyorchestrate-web")],
    ],
    ids=["plugin", "script"],
)


@ENTRY_POINTS
def test_a_public_host_without_a_token_is_refused(argv: list[str]) -> None:
    result = subprocess.run(
        [*argv, "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(),
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "host: '0.0.0.0' is not a loopback address" in result.stderr
    assert "PYORCHESTRATE_WEB_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_operator_permissions_without_a_token_are_refused() -> None:
    result = subprocess.run(
        [str(BIN / "pyorchestrate-web"), "--permissions", "operator"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(),
        check=False,
    )
    assert result.returncode == 2
    assert "permissions: 'operator' allows actions, which need a token" in result.stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            'state_path = "none"\n',
            "notify_config: the notifier settings keep no state file",
        ),
        ("[webhook]\nurl = 5\n", "webhook"),
    ],
    ids=["state-off", "bad-settings"],
)
def test_bad_notifier_settings_are_refused_naming_them(
    tmp_path: Path, settings: str, message: str
) -> None:
    config = tmp_path / "notify.toml"
    config.write_text(settings)
    result = subprocess.run(
        [str(BIN / "pyorchestrate-web"), "--notify-config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(PYORCHESTRATE_SOCKET=str(tmp_path / "none.sock")),
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_serves_the_api_and_stops_on_sigint(fleet: Fleet, tmp_path: Path) -> None:
    from notifiers.state import NotifierState

    state = tmp_path / "notify.sqlite3"
    with NotifierState(state) as opened:
        opened.mute("agent", "worker", duration=600, reason="maintenance")
    process = subprocess.Popen(
        [str(BIN / "pyorchestrate"), "web", "--socket", fleet.socket, "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=_env(PYORCHESTRATE_NOTIFY_STATE_PATH=str(state)),  # as notify reads it
    )
    try:
        assert process.stderr is not None
        ready, _, _ = select.select([process.stderr], [], [], 30)
        assert ready, "pyorchestrate web said nothing within 30 s"
        line = process.stderr.readline()
        match = re.search(r"serving (http://127\.0\.0\.1:\d+) ", line)
        assert match, line
        with urllib.request.urlopen(f"{match[1]}/api/agents", timeout=10) as reply:
            names = {row["name"] for row in json.load(reply)["agents"]}
        assert names == {"worker", "boom"}
        with urllib.request.urlopen(f"{match[1]}/api/alerts", timeout=10) as reply:
            mutes = json.load(reply)["mutes"]
        assert [(m["kind"], m["value"]) for m in mutes] == [("agent", "worker")]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 130  # as every command on Ctrl+C
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


_WEB_LIBRARIES = (
    "starlette",
    "uvicorn",
    "sse_starlette",
    "prometheus_client",
    "jinja2",
)


def _loaded(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys\nprint(sorted(m for m in sys.modules "
        f"if m.split('.')[0] in {_WEB_LIBRARIES!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        check=True,
    )
    return list(json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"')))


def test_the_core_and_the_web_help_load_no_web_library() -> None:
    """The core never loads the server's libraries, and ``pyorchestrate web
    --help`` (run through the CLI's plugin lookup) loads none either."""
    assert _loaded("import pyorchestrate\nfrom pyorchestrate import Orchestrator") == []
    assert _loaded("import pyorchestrate.web, pyorchestrate.web.cli") == []
    help_probe = (
        "from pyorchestrate.cli._app import run\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert run(['web', '--help']) == 0"
    )
    assert _loaded(help_probe) == []


def test_without_the_web_extra_it_says_what_to_install() -> None:
    probe = (
        "import sys\n"
        "sys.modules['starlette'] = None  # as if the [web] extra were not installed\n"
        "sys.argv = ['pyorchestrate-web']\n"
        "from pyorchestrate.web.cli import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "needs the [web] extra (starlette is missing)" in result.stderr
    assert "pip install 'pyorchestrate[web]'" in result.stderr
    assert "Traceback" not in result.stderr
