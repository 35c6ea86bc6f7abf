#!/usr/bin/env bash
# Create .venv, install zkmb with its dev dependencies, and the node tools the interop tests use
# (snarkjs, circom2, circomlib, circomlibjs: pinned in .tools/package-lock.json). Idempotent, and quiet
# and fast when nothing changed: the install is redone only when pyproject.toml, the extras this machine
# can build or the interpreter changed (a stamp in .venv records them; the install is editable, so source
# edits need no reinstall). ZKMB_SETUP_FORCE=1 reinstalls anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $("$PY" -c 'import sys; print(sys.executable)')" >&2
    if ! "$PY" -m venv .venv; then
        echo "setup failed: '$PY -m venv' did not work (Debian: apt-get install python3-venv)" >&2
        rm -rf .venv
        exit 1
    fi
fi
extras=dev
if [ -e /usr/include/libnetfilter_queue/libnetfilter_queue.h ]; then
    # bridge mode's NFQUEUE binding builds from source against libnetfilter-queue-dev
    extras=dev,bridge
fi
stamp=.venv/.zkmb-setup-stamp
want="$( (sha256sum pyproject.toml; echo "extras=$extras"; readlink -f .venv/bin/python) | sha256sum | cut -d' ' -f1)"
if [ "${ZKMB_SETUP_FORCE:-0}" != 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] \
    && .venv/bin/python -c "import zkmb, numba, py_ecc" 2>/dev/null; then
    : # installed and current
else
    rm -f "$stamp"
    echo "setup: installing zkmb[$extras] into .venv (pyproject.toml changed or first run) ..." >&2
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    # pip's and setuptools' chatter goes to the log, shown only if the install fails
    if ! .venv/bin/python -m pip install -q --upgrade pip >"$log" 2>&1 \
        || ! .venv/bin/python -m pip install -q -e ".[$extras]" >>"$log" 2>&1; then
        cat "$log" >&2
        echo "setup failed: pip install of zkmb[$extras] (output above)" >&2
        exit 1
    fi
    .venv/bin/python -c "import zkmb, numba, py_ecc" || { echo "setup failed: zkmb did not install" >&2; exit 1; }
    echo "$want" >"$stamp"
fi
if command -v npm >/dev/null 2>&1; then
    if [ ! -f .tools/node_modules/.package-lock.json ] || ! cmp -s .tools/package-lock.json .tools/node_modules/.lock-copy; then
        echo "setup: installing the node tools (snarkjs, circom2) into .tools ..." >&2
        # --ignore-scripts: no install script may run or reach the network on its own
        (cd .tools && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
        cp .tools/package-lock.json .tools/node_modules/.lock-copy
    fi
else
    echo "note: npm not found; the snarkjs/circom interop tests will be skipped" >&2
fi
