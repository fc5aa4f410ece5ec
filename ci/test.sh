#!/usr/bin/env bash
# The project's test command: set up the machine, then lint, type-check and
# run every test tier. Skips print their reason (-rs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
echo "== tools"; bash ci/check-tools.sh

export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check .
echo "== mypy"; mypy
echo "== tests"
# Everything but the real-guest tier runs in parallel (xdist); the guest tier
# boots QEMU guests under TCG and runs on its own so two boots never compete
# for the two cores.
pytest -rs -n 2 -m "not guest" -p no:cacheprovider
if grep -rqs "pytest.mark.guest" tests; then
    pytest -rs -m guest -p no:cacheprovider
fi
