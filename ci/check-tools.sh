#!/usr/bin/env bash
# Name every tool or file the test tiers need that this machine lacks, and
# fail if any is missing. ci/test.sh runs it right after ci/setup.sh, so a
# package missing from ci/apt-packages.txt fails CI here, by name, instead of
# as a confusing test error later on.
set -uo pipefail
cd "$(dirname "$0")/.."

missing=()
need_cmd() {  # need_cmd TOOL PACKAGE
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || missing+=("$1 (package $2)")
}
need_file() {  # need_file PATH PACKAGE
    [ -e "$1" ] || missing+=("$1 (package $2)")
}

need_cmd libvirtd libvirt-daemon
need_cmd virsh libvirt-clients
need_cmd qemu-system-x86_64 qemu-system-x86
need_cmd qemu-img qemu-utils
need_cmd pkg-config pkg-config
need_cmd swtpm swtpm
need_cmd swtpm_setup swtpm-tools
need_file /usr/share/OVMF/OVMF_CODE_4M.fd ovmf
need_file /usr/share/OVMF/OVMF_VARS_4M.fd ovmf
need_cmd sshd openssh-server
need_cmd ssh-keygen openssh-client
need_cmd chromium chromium
need_cmd busybox busybox-static
need_cmd cpio cpio
need_cmd mke2fs e2fsprogs
need_cmd setpriv util-linux
need_cmd unshare util-linux
need_cmd ip iproute2
need_cmd ss iproute2
need_cmd virt-ssh-helper libvirt-daemon
need_cmd gcc gcc
need_cmd nm binutils
need_cmd addr2line binutils
need_file /usr/lib/x86_64-linux-gnu/libasan.so.8 libasan8
need_file /usr/lib/x86_64-linux-gnu/libubsan.so.1 libubsan1
need_cmd x86_64-w64-mingw32-gcc gcc-mingw-w64-x86-64
need_cmd openssl openssl
command -v wine64 >/dev/null 2>&1 || command -v wine >/dev/null 2>&1 || \
    need_file /usr/lib/wine/wine64 wine64
pkg-config --exists libvirt 2>/dev/null || missing+=("libvirt.pc (package libvirt-dev)")
python3 -m venv --help >/dev/null 2>&1 || missing+=("python3 -m venv (package python3-venv)")

if [ "${#missing[@]}" -gt 0 ]; then
    echo "check-tools: this machine lacks what the tests need:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    echo "check-tools: add the package to ci/apt-packages.txt (ci/setup.sh installs that list)" >&2
    exit 1
fi
echo "check-tools: every tool the test tiers need is here"
