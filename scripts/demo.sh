#!/usr/bin/env bash
# Set up and run the end-to-end loopback demo (embedded DoT resolver, middlebox, stub).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! .venv/bin/zkmb demo --help >/dev/null 2>&1; then
    echo "zkmb demo: not yet — the resolver, middlebox and stub services are still being built (issues 6-9)."
    echo "What exists today: the BN254 algebra core. Try: .venv/bin/zkmb bench algebra --quick"
    exit 0
fi
exec .venv/bin/zkmb demo "$@"
