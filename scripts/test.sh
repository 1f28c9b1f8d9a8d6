#!/usr/bin/env bash
# Set up a virtual environment from this checkout and run every check CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy pyorchestrate notifiers
.venv/bin/lint-imports --no-cache
site=$(mktemp -d)  # the docs must build with no broken link or stale reference
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$site"
rm -rf "$site"
.venv/bin/python -m pytest "$@"
