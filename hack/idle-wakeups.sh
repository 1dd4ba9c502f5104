#!/usr/bin/env bash
# Measures what an idle `oomscope run` costs: voluntary context switches (wake-ups) of all its
# threads over SECONDS (default 60) after a 10 s settling time, once
# without NATS and once with the embedded NATS server. Needs root (/dev/kmsg).
# Usage: hack/idle-wakeups.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
bin=$(mktemp -d)/oomscope
CGO_ENABLED=0 go build -o "$bin" ./cmd/oomscope
switches() { # voluntary context switches (wake-ups after sleeping) of every thread of $1
	cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {n += $2} END {print n}'
}
measure() {
	local name=$1; shift
	local state; state=$(mktemp -d)
	"$bin" run --state-dir "$state" --start end --kubeconfig none "$@" 2>/dev/null &
	local pid=$!
	sleep 10
	local a; a=$(switches $pid)
	sleep "$secs"
	local b; b=$(switches $pid)
	kill $pid; wait $pid 2>/dev/null || true
	rm -rf "$state"
	printf '| %s | %d | %d s | %.2f/s |\n' "$name" $((b - a)) "$secs" "$(echo "($b - $a) / $secs" | bc -l)"
}
echo "| configuration | wake-ups (voluntary context switches) | over | rate |"
echo "|---|---:|---:|---:|"
measure "archive only (--nats-url none)" --nats-url none
measure "archive + embedded NATS" --nats-listen 127.0.0.1:0
