"""README.md's quickstart, run as a user would: in a fresh virtual environment.

The blocks marked ``<!-- quickstart: shell -->`` and ``<!-- quickstart: FILE -->`` are
taken from README.md as they are. The test makes a new venv (``python -m venv``, no
system site-packages), runs the ``pip install`` line in it from the checkout
(non-editable: the wheel hatchling builds, as a user gets it; pip's cache keeps this
to ~15 s), writes the file blocks into a temporary directory, and runs the ``python``
lines there. The ``export`` lines name the channel; their values are replaced by a
local fake (a :class:`~notifiers.testing.WebhookSink` on 127.0.0.1), and the alert
must arrive there.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from notifiers.testing import WebhookSink

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- quickstart: (?P<tag>\S+) -->\n```\w*\n(?P<body>.*?)```", re.S)


def quickstart_blocks() -> list[tuple[str, str]]:
    """``[(tag, body)]`` of the marked blocks, in README order."""
    return [
        (m["tag"], m["body"])
        for m in BLOCK.finditer((ROOT / "README.md").read_text("utf-8"))
    ]


def shell_lines() -> list[str]:
    lines = []
    for tag, body in quickstart_blocks():
        if tag == "shell":
            for raw in body.splitlines():
                line = raw.split(" #", 1)[0].strip()
                if line:
                    lines.append(line)
    return lines


def test_the_quickstart_is_marked_and_short() -> None:
    blocks = quickstart_blocks()
    tags = [tag for tag, _ in blocks]
    assert "shell" in tags and "quickstart.py" in tags
    total = sum(len(body.strip().splitlines()) for _, body in blocks)
    assert total <= 25, total
    lines = shell_lines()
    assert lines[0].startswith("pip install ")
    assert any(line.startswith("export PYORCHESTRATE_NOTIFY_") for line in lines)
    assert lines[-1] == "python quickstart.py"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_quickstart_delivers_its_first_alert(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    bindir = env_dir / "bin"
    work = tmp_path / "app"
    work.mkdir()
    for tag, body in quickstart_blocks():
        if tag != "shell":
            (work / tag).write_text(body, "utf-8")

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYORCHESTRATE_", "PYTHON", "VIRTUAL_ENV", "PIP_"))
    }
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_STATE_HOME"] = str(tmp_path / "state")  # the outbox stays in tmp
    env["XDG_RUNTIME_DIR"] = str(tmp_path)
    with WebhookSink() as sink:
        for line in shell_lines():
            argv = shlex.split(line)
            if argv[0] == "export":
                name, _, _value = argv[1].partition("=")
                assert name == "PYORCHESTRATE_NOTIFY_WEBHOOK__URL", line
                env[name] = sink.json_url("/readme-alerts")
                continue
            if argv[0] == "pip":  # from the checkout, into the fresh venv
                argv = [str(bindir / "python"), "-m", "pip", *argv[1:]]
                argv[4:4] = ["--quiet", "--disable-pip-version-check"]
                cwd = ROOT
                timeout = 150.0
            else:
                assert argv[0] == "python", line
                argv = [str(bindir / "python"), *argv[1:]]
                cwd = work
                timeout = 60.0
            done = subprocess.run(
                argv,
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if argv[-1] == "quickstart.py":
                # Its agent fails on purpose: the failure shows on stderr (one block,
                # no logging configured) and the script exits 1.
                assert done.returncode == 1, (line, done.stdout, done.stderr)
                assert done.stderr.count("Traceback") == 1, done.stderr
                assert (
                    "agent 'etl' failed: RuntimeError: the source database is down"
                    in done.stderr
                )
            else:
                assert done.returncode == 0, (line, done.stdout, done.stderr)
                assert "Traceback" not in done.stderr, (line, done.stderr)
        [request] = sink.wait_for(1, timeout=10)
    # The quickstart ran the installed package, not this checkout.
    where = subprocess.run(
        [
            str(bindir / "python"),
            "-c",
            "import pyorchestrate; print(pyorchestrate.__file__)",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(where.strip()).is_relative_to(env_dir), where
    assert request.path == "/readme-alerts"
    assert request.json["title"] == "✖ etl failed"
    assert "RuntimeError: the source database is down" in request.json["message"]
    assert sys.executable not in where
