"""Every ```python block in the docs and README.md runs.

(Including code from ``examples/`` with pymdownx.snippets is not used for python
blocks: ``ruff format`` formats code in Markdown and would mangle a ``--8<--`` line.)
Each block is executed as a script: in a fresh interpreter, in a temporary
directory, with the repository root and ``examples/`` on ``PYTHONPATH`` (the seed's ``my_project`` lives there) and no ``PYORCHESTRATE_*``
variables, and it must exit with 0. README.md's quickstart blocks (after a
``<!-- quickstart`` marker) are run by ``tests/test_readme.py`` in a fresh venv.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```python[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.S | re.M
)


@dataclass(frozen=True)
class Block:
    source: str  # "docs/page.md:LINE"
    body: str


def blocks() -> list[Block]:
    pages = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
    found = []
    for page in pages:
        text = page.read_text("utf-8")
        for m in FENCE.finditer(text):
            before = text[: m.start()].rstrip().splitlines()
            if before and before[-1].lstrip().startswith("<!-- quickstart"):
                continue
            line = text.count("\n", 0, m.start()) + 1
            indent = len(m["indent"])
            body = "\n".join(row[indent:] for row in m["body"].splitlines())
            found.append(Block(f"{page.relative_to(ROOT)}:{line}", body + "\n"))
    return found


EXECUTED = blocks()


def test_the_docs_have_python_blocks() -> None:
    assert len(EXECUTED) >= 10


@pytest.mark.parametrize("block", EXECUTED, ids=[b.source for b in EXECUTED])
def test_block_runs(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(block.body, "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYORCHESTRATE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(EXAMPLES)])
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, f"{block.source}\n{block.body}\n{result.stderr}"
