#!/usr/bin/env bash
# Create .venv, install zkmb with its dev dependencies, and the node tools the interop tests use
# (snarkjs, circom2, circomlib, circomlibjs: pinned in .tools/package-lock.json). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
quiet() { grep -v '^WARNING: Location' || true; }
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | quiet
.venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | quiet
if [ -e /usr/include/libnetfilter_queue/libnetfilter_queue.h ]; then
    # bridge mode's NFQUEUE binding builds from source against libnetfilter-queue-dev
    .venv/bin/python -m pip install -q -e '.[dev,bridge]' 2>&1 | quiet
fi
.venv/bin/python -c "import zkmb, numba, py_ecc" || { echo "setup failed: zkmb did not install" >&2; exit 1; }
if command -v npm >/dev/null 2>&1; then
    if [ ! -f .tools/node_modules/.package-lock.json ] || ! cmp -s .tools/package-lock.json .tools/node_modules/.lock-copy; then
        # --ignore-scripts: no install script may run or reach the network on its own
        (cd .tools && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
        cp .tools/package-lock.json .tools/node_modules/.lock-copy
    fi
else
    echo "note: npm not found; the snarkjs/circom interop tests will be skipped" >&2
fi
