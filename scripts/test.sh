#!/usr/bin/env bash
# Set up virtual environments from this checkout and run every check CI runs: the
# gates and the test suite on the oldest Python we support (python3, 3.11), then the
# test suite again on the newest (3.13, from pyenv or PATH; PYTHON_NEWEST names another).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WORKERS=${PYTEST_WORKERS:-2}

setup() {  # setup VENV PYTHON: a venv with the project and its dev extras
    [ -x "$1/bin/python" ] || "$2" -m venv "$1"
    "$1/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
}

newest_python() {
    if [ -n "${PYTHON_NEWEST:-}" ]; then echo "$PYTHON_NEWEST"; return; fi
    local found
    for found in "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python \
        "$HOME"/.pyenv/versions/3.13*/bin/python "$(command -v python3.13 || true)"; do
        [ -x "$found" ] && { echo "$found"; return; }
    done
    return 1
}

install_web_binaries() {
    # The dashboard's browser and Prometheus tests (tests/web) drive Debian's
    # chromium, chromedriver and prometheus; a fresh machine lacks them. On CI
    # (CI=true) those tests fail rather than skip when they are missing.
    local browser=() server=()
    command -v chromium >/dev/null || browser+=(chromium)
    command -v chromedriver >/dev/null || browser+=(chromium-driver)
    command -v prometheus >/dev/null || server+=(prometheus)
    [ $((${#browser[@]} + ${#server[@]})) -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "missing ${browser[*]} ${server[*]}: the browser and Prometheus tests" \
            "will skip (install them with apt-get)" >&2
        return 0
    fi
    echo "== apt-get install ${browser[*]} ${server[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    [ ${#browser[@]} -eq 0 ] || apt-get install -y -qq "${browser[@]}" >/dev/null
    # No recommends: they add node-exporter, a service listening on every interface.
    [ ${#server[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends \
        "${server[@]}" >/dev/null
}

install_web_binaries
setup .venv "$PY"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy pyorchestrate notifiers
.venv/bin/lint-imports --no-cache
site=$(mktemp -d)  # the docs must build with no broken link or stale reference
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$site"
rm -rf "$site"
echo "== tests on $(.venv/bin/python -V)"
.venv/bin/python -m pytest -n "$WORKERS" "$@"

if [ "${SKIP_NEWEST:-}" = 1 ]; then exit 0; fi
newest=$(newest_python) || {
    echo "no Python 3.13 found (pyenv, PATH or PYTHON_NEWEST): the newest Python we" \
        "claim would go untested; set SKIP_NEWEST=1 to run on $("$PY" -V) alone" >&2
    exit 1
}
setup .venv-newest "$newest"
echo "== tests on $(.venv-newest/bin/python -V)"
.venv-newest/bin/python -m pytest -n "$WORKERS" "$@"
