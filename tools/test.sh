#!/usr/bin/env bash
# Install everything the test suite needs on a Debian bookworm machine, then run
# the whole suite in parallel.
#
#   bash tools/test.sh [PYTEST ARGS...]
#   bash tools/test.sh --setup-only      # everything but the tests (tools/linux_kvm.sh)
#
# apt (as root, or through sudo): the host C compiler (and Python's headers, for the
# compiled fast path), the aarch64 cross toolchain,
# gdb-multiarch, cpio, and QEMU 10.x (qemu-system-arm) from bookworm-backports, whose
# source line is made from this machine's own Debian mirror; the arm64 architecture,
# so that tools/guests.sh can fetch Debian's arm64 kernel, busybox and U-Boot (run
# before the tests; no root needed for it).  The apt step is
# skipped when everything is already installed.  Then the package and its test
# and bench extras are installed with pip (editable): into the active virtualenv,
# or the Python given as $PYTHON, or, when the system Python is externally managed
# (PEP 668), into .venv/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES=(gcc gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu gdb-multiarch cpio)
QEMU_MIN_MAJOR=10

log() { printf 'test.sh: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else log "need root for: $*"; exit 1
    fi
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

qemu_ok() {
    command -v qemu-system-aarch64 >/dev/null || return 1
    local major
    major=$(qemu-system-aarch64 --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p' | head -1)
    [ "${major:-0}" -ge "$QEMU_MIN_MAJOR" ]
}

# The URI of this machine's main Debian archive (the stanza or line for "bookworm").
debian_mirror() {
    local f=/etc/apt/sources.list.d/debian.sources uri=""
    if [ -r "$f" ]; then
        uri=$(awk '
            /^[[:space:]]*$/ { if (suites ~ /(^| )bookworm( |$)/ && uris != "") { print uris; exit } uris = ""; suites = ""; next }
            /^URIs:/   { uris = $2 }
            /^Suites:/ { $1 = ""; suites = $0 " " }
            END        { if (suites ~ /(^| )bookworm( |$)/ && uris != "") print uris }' "$f" | head -1)
    fi
    if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || { log "cannot find the Debian mirror in /etc/apt/sources.list{,.d/debian.sources}"; exit 1; }
    printf '%s\n' "$uri"
}

# apt knows arm64 packages (tools/guests.sh downloads Debian's arm64 kernel and busybox).
arm64_ok() { dpkg --print-foreign-architectures | grep -qx arm64; }

apt_setup() {
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
    if [ -z "${PYTHON:-}" ] && [ -z "${VIRTUAL_ENV:-}" ] && ! command -v python3 >/dev/null; then
        missing+=(python3 python3-venv python3-pip)
    fi
    if [ ${#missing[@]} = 0 ] && qemu_ok && arm64_ok; then
        log "apt packages already installed, QEMU $(qemu-system-aarch64 --version | head -1 | awk '{print $4}')"
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! qemu_ok && ! grep -Rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        local uri
        uri=$(debian_mirror)
        log "adding bookworm-backports from $uri"
        echo "deb $uri bookworm-backports main" | as_root tee /etc/apt/sources.list.d/backports.list >/dev/null
    fi
    if ! arm64_ok; then
        log "adding the arm64 architecture (for Debian's arm64 kernel and busybox: tools/guests.sh)"
        as_root dpkg --add-architecture arm64
    fi
    as_root apt-get update
    if [ ${#missing[@]} != 0 ]; then
        as_root apt-get install -y "${missing[@]}"
    fi
    if ! qemu_ok; then
        as_root apt-get install -y -t bookworm-backports qemu-system-arm
    fi
    qemu_ok || { log "qemu-system-aarch64 >= $QEMU_MIN_MAJOR still missing"; exit 1; }
}

pick_python() {
    local py=${PYTHON:-python3}
    if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${PYTHON:-}" ] && "$py" - <<'PY'
import os, sys, sysconfig
managed = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
sys.exit(0 if managed and sys.prefix == sys.base_prefix else 1)
PY
    then
        if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
            rm -rf .venv
            if ! "$py" -m venv .venv >/dev/null 2>&1; then
                rm -rf .venv
                as_root apt-get install -y python3-venv python3-pip >&2
                "$py" -m venv .venv
            fi
        fi
        py=.venv/bin/python
    fi
    printf '%s\n' "$py"
}

# The compiled fast path (neve/core/_fastpath.c) needs Python's headers; Debian's
# own Python has them in python3-dev (tests/test_fastpath.py fails without it).
python_headers() {
    local py=$1
    "$py" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        || as_root apt-get install -y python3-dev >&2
}

apt_setup
PY=$(pick_python)
python_headers "$PY"
log "fetching the third-party guests (tools/guests.sh)"
bash tools/guests.sh
log "installing neve[test,bench] with $PY"
"$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[test,bench]'
if [ "${1:-}" = "--setup-only" ]; then
    log "set up; neve is installed for $PY"
    exit 0
fi
log "running the test suite"
exec "$PY" -m pytest -n auto -q "$@"
