#!/usr/bin/env bash
# hack/e2e-matrix.sh — run the qemu OOM kernel matrix and print its table.
#
# Boots Debian's bullseye 5.10, bookworm 6.1 and trixie 6.12 kernels under
# qemu (TCG, -smp 1, 256 MiB, one boot per kernel, sequentially), runs every
# OOM scenario in the guest and checks oomscope's reports against the
# guest's ground truth and the kernel's own counters (go test -tags e2e
# ./e2e/qemu -run TestMatrix). Ends with a kernel × scenario table; exits
# non-zero when any cell failed (a kernel that cannot be fetched fails).
#
# Installs qemu-system-x86, busybox-static and cpio with apt-get when missing;
# kernels are cached in .cache/kernels (hack/kernels.sh), reused when present.
#
# Environment:
#   OOMSCOPE_E2E_KERNELS=debian-6.1,...   only these kernels (or suites)
#   OOMSCOPE_E2E_SCENARIOS=v2-container,...  only these scenarios
#   OOMSCOPE_E2E_CAPTURE=1                save raw captures to testdata/kernels/
#   OOMSCOPE_KERNEL_CACHE=DIR             kernel cache (default .cache/kernels)
#   OOMSCOPE_E2E_LIVE_TABLE=FILE          the live part's table (e2e/live), printed first
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

"$REPO/hack/deps.sh"

TABLE=$(mktemp)
trap 'rm -f "$TABLE"' EXIT
rc=0
OOMSCOPE_E2E_TABLE=$TABLE go test -tags e2e ./e2e/qemu -run '^TestMatrix$' -count=1 -v -timeout 30m || rc=$?
echo
if [[ -n ${OOMSCOPE_E2E_LIVE_TABLE:-} && -s ${OOMSCOPE_E2E_LIVE_TABLE} ]]; then
	echo "==================== live OOM kills on this machine ===================="
	cat "$OOMSCOPE_E2E_LIVE_TABLE"
	echo
fi
echo "==================== qemu OOM kernel matrix ===================="
if [[ -s $TABLE ]]; then
	cat "$TABLE"
else
	echo "(no table: the matrix did not run to the end, see above)"
	[[ $rc != 0 ]] || rc=1
fi
exit "$rc"
