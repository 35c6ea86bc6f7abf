#!/usr/bin/env bash
# Set up and run the end-to-end loopback demo (embedded DoT resolver, middlebox, stub).
# Exits non-zero if the setup, the install or the demo itself fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "demo: setup failed (see above)" >&2; exit 1; }
if ! err=$(.venv/bin/zkmb demo --help 2>&1 >/dev/null); then
    echo "$err" >&2
    echo "demo: the zkmb command is broken in .venv (see above); ZKMB_SETUP_FORCE=1 bash scripts/setup.sh reinstalls" >&2
    exit 1
fi
exec .venv/bin/zkmb demo "$@"
