#!/usr/bin/env bash
# The nightly run: the whole scenario catalog with a certification bundle, then
# the run is added to the history file and the trend page is rendered.
# Any scheduler can call it (cron, a systemd timer, GitHub Actions, tox -e nightly).
#
#   HARNESS_POOL     pool file of VM slots; unset or "sim": the embedded engine model
#   HARNESS_DRIVER   driver manifest to deploy on Windows slots (drivers/NAME/driver.toml)
#   HARNESS_WORKERS  xdist workers (default 2 on the model, 4 on a pool)
#   HARNESS_OUT      where runs, the history and the trend page go (default nightly-out);
#                    keep it between nights, the history lives there
#   HARNESS_ERRATA   known-issues file (default ci/errata.toml when it exists)
#   HARNESS_RETRIES  extra attempts for a failed scenario; a later pass is flaky (default 1)
#
# Layout of $HARNESS_OUT:
#   runs/<UTC stamp>/junit.xml, bundle/, bundle.tar.gz, harness-out/
#   history.jsonl, trends.html, latest -> runs/<UTC stamp>
# Exit status: pytest's (0 green, 1 a red item); the history is recorded either way.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x .venv/bin/pytest ]; then
    export PATH="$PWD/.venv/bin:$PATH"
fi

OUT="${HARNESS_OUT:-nightly-out}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RUN="$OUT/runs/$STAMP"
HISTORY="$OUT/history.jsonl"
ERRATA="${HARNESS_ERRATA:-}"
if [ -z "$ERRATA" ] && [ -f ci/errata.toml ]; then
    ERRATA=ci/errata.toml
fi
mkdir -p "$RUN"

args=(
    --certify "$RUN/bundle"
    --junitxml "$RUN/junit.xml"
    --harness-out "$RUN/harness-out"
    --harness-retries "${HARNESS_RETRIES:-1}"
    --errata-history "$HISTORY"
    -p no:cacheprovider -rs
)
if [ -n "$ERRATA" ]; then
    args+=(--errata "$ERRATA")
fi

POOL="${HARNESS_POOL:-sim}"
status=0
if [ "$POOL" = "sim" ]; then
    echo "nightly: the scenario catalog on the engine model -> $RUN"
    pytest scenarios --vm sim -n "${HARNESS_WORKERS:-2}" "${args[@]}" "$@" || status=$?
else
    if [ -n "${HARNESS_DRIVER:-}" ]; then
        args+=(--driver "$HARNESS_DRIVER")
    fi
    echo "nightly: the scenario catalog on pool $POOL (driver ${HARNESS_DRIVER:-none}) -> $RUN"
    pytest scenarios --vm-pool "$POOL" -n "${HARNESS_WORKERS:-4}" "${args[@]}" "$@" \
        || status=$?
fi

# A red night is the one the trend page is for: record it too.
if [ -f "$RUN/bundle/results.json" ]; then
    callout-harness certify verify "$RUN/bundle.tar.gz"
    callout-harness history add "$RUN/bundle" --file "$HISTORY"
    callout-harness history report --file "$HISTORY" --out "$OUT/trends.html"
else
    echo "nightly: no bundle was written (pytest exit status $status)" >&2
fi
ln -sfn "runs/$STAMP" "$OUT/latest"
if [ -n "${GITHUB_ENV:-}" ]; then
    # Resolved paths (no '..') for the workflow's artifact upload.
    echo "HARNESS_RUN_DIR=$(cd "$RUN" && pwd -P)" >> "$GITHUB_ENV"
    echo "HARNESS_TRENDS=$(cd "$OUT" && pwd -P)/trends.html" >> "$GITHUB_ENV"
fi
exit "$status"
