#!/usr/bin/env bash
# Set up a Debian machine for callout-harness: system packages (as root), then
# a virtualenv in .venv with the harness and its extras installed editable.
#   ci/setup.sh            everything (the test tier needs libvirt, QEMU, sshd, chromium)
#   ci/setup.sh --core     just Python, the harness and pytest (enough for the engine model)
set -euo pipefail
cd "$(dirname "$0")/.."

core_only=0
[ "${1:-}" = "--core" ] && core_only=1

apt_install() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "setup: not root or no apt-get; assuming these are installed: $*" >&2
        return 0
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ "$core_only" -eq 1 ]; then
    python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv python3-pip
else
    # shellcheck disable=SC2046
    apt_install $(grep -v '^\s*#' ci/apt-packages.txt | grep -v '^\s*$')
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$core_only" -eq 1 ]; then
    # pytest too: the plugin is the main way in (pytest scenarios ...)
    .venv/bin/python -m pip install -q -e . 'pytest>=8'
else
    .venv/bin/python -m pip install -q -e '.[dev,vm,guest]'
fi
