#!/usr/bin/env bash
# hack/initramfs.sh — build the initramfs of the qemu OOM matrix.
#
# Contents (all static, no kernel modules needed):
#   /init             busybox shell script: mounts /proc /sys /dev /run,
#                     sets oom_score_adj -1000, execs /bin/scenarios as PID 1
#   /bin/busybox      from busybox-static (+ /bin/sh link)
#   /bin/scenarios    e2e/qemu/guest/scenarios (the scenario runner)
#   /bin/kmsgdump     e2e/qemu/guest/kmsgdump (raw /dev/kmsg → framed serial)
#   /bin/alloc        e2e/alloc (the allocator)
#   /bin/oomscope     ./cmd/oomscope, when it builds and has `run --stdout`
#                     (OOMSCOPE_E2E_OOMSCOPE=0 leaves it out; then the host
#                     parses the raw kmsg frames itself)
#
# Usage: hack/initramfs.sh OUT.cpio.gz
# Requires: go, busybox-static (/bin/busybox), cpio, gzip. Run as root (it
# creates the /dev/console and /dev/null nodes).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:?usage: hack/initramfs.sh OUT.cpio.gz}
BUSYBOX=${BUSYBOX:-/bin/busybox}

log() { printf 'initramfs.sh: %s\n' "$*" >&2; }
die() { printf '\ninitramfs.sh: ERROR: %s\n\n' "$*" >&2; exit 1; }

[[ -x $BUSYBOX ]] || die "$BUSYBOX missing (apt-get install busybox-static)"
lddout=$(ldd "$BUSYBOX" 2>&1 || true) # ldd fails on a static binary
grep -Eq 'not a dynamic executable|statically linked' <<<"$lddout" ||
	die "$BUSYBOX is not statically linked (apt-get install busybox-static)"
command -v cpio >/dev/null || die "cpio missing (apt-get install cpio)"

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,dev,proc,sys,run,tmp}
cp "$BUSYBOX" "$STAGE/bin/busybox"
ln -s busybox "$STAGE/bin/sh"
mknod -m 600 "$STAGE/dev/console" c 5 1
mknod -m 666 "$STAGE/dev/null" c 1 3

build() { # build PKG NAME
	(cd "$REPO" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags='-s -w' -o "$STAGE/bin/$2" "$1")
}
build ./e2e/qemu/guest/scenarios scenarios || die "go build ./e2e/qemu/guest/scenarios failed"
build ./e2e/qemu/guest/kmsgdump kmsgdump || die "go build ./e2e/qemu/guest/kmsgdump failed"
build ./e2e/alloc alloc || die "go build ./e2e/alloc failed"
if [[ ${OOMSCOPE_E2E_OOMSCOPE:-1} != 0 ]]; then
	if build ./cmd/oomscope oomscope 2>"$STAGE/oomscope-build.log" &&
		help=$("$STAGE/bin/oomscope" run --help 2>/dev/null) && [[ $help == *--stdout* ]]; then
		# (not `| grep -q`: with pipefail, grep leaving at the first match
		# can kill oomscope with SIGPIPE and fail the test at random)
		log "oomscope included: the guest runs 'oomscope run --stdout'"
	else
		sed 's/^/  /' "$STAGE/oomscope-build.log" | head -n 20 >&2 || true
		die "oomscope did not build or has no 'run --stdout' (OOMSCOPE_E2E_OOMSCOPE=0 leaves it out: the host then parses the raw kmsg frames)"
	fi
	rm -f "$STAGE/oomscope-build.log"
fi

cat >"$STAGE/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t tmpfs tmpfs /run
/bin/busybox mount -t tmpfs tmpfs /tmp
# Loopback up: oomscope run's default embedded NATS server listens on
# 127.0.0.1 and its own sink connects there.
/bin/busybox ip link set lo up
echo -1000 >/proc/self/oom_score_adj
echo "init: starting the scenario runner"
exec /bin/scenarios
EOF
chmod 755 "$STAGE/init"

mkdir -p "$(dirname "$OUT")"
(cd "$STAGE" && find . -print0 | sort -z | cpio --null -o -H newc --owner=0:0 --quiet) | gzip -1 >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "wrote $OUT ($(du -h "$OUT" | cut -f1))"
