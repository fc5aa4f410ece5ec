#!/usr/bin/env bash
# The main job on the embedded engine model: set up, then run the whole
# scenario catalog with the reference callout, writing traces and the HTML
# report to harness-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh --core
exec .venv/bin/callout-harness run --vm sim --scenario all --out harness-out "$@"
