#!/usr/bin/env bash
# Build the control-plane binaries that controller-runtime's envtest runs
# (etcd and kube-apiserver) from source fetched through the Go module proxy,
# into $REPO/.cache/envtest/bin (git-ignored).
#
# The versions live in hack/envtest/go.mod (a separate Go module, so none of
# Kubernetes' dependencies leak into the main module). The build is skipped
# when both binaries exist and the stamp file records the same inputs.
#
# Usage:  hack/envtest-bins.sh            # build if needed
#         ENVTEST_FORCE=1 hack/envtest-bins.sh
#         export KUBEBUILDER_ASSETS="$(hack/envtest-bins.sh | tail -n1)"
#
# The last line on stdout is the binary directory (use it as
# KUBEBUILDER_ASSETS or envtest.Environment.BinaryAssetsDirectory); all
# progress goes to stderr.
#
# Needs only Go (>= the go line of hack/envtest/go.mod) and the module proxy.
# Cold build on 2 cores: roughly 1-2 min for etcd, 8-15 min for kube-apiserver;
# later runs reuse GOCACHE and the module cache.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MOD="$REPO/hack/envtest"
BIN="${ENVTEST_BIN_DIR:-$REPO/.cache/envtest/bin}"
STAMP="$BIN/.stamp"

export GOFLAGS=-mod=readonly # go.sum is complete; never rewrite tracked files
export GOWORK=off
export CGO_ENABLED=0
# Two cores: keep the number of concurrent compile/link jobs low so the
# kube-apiserver link (the memory peak) does not race other compiles.
ENVTEST_BUILD_P="${ENVTEST_BUILD_P:-2}"

log() { printf 'envtest-bins: %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go not found in PATH"; exit 1; }

# Versions come from hack/envtest/go.mod (the single source of truth).
# Handles both `require m v` and a `m v` line inside a require block.
modver() {
	awk -v m="$1" '{ if ($1 == "require") { $1 = ""; $0 = $0 } }
		$1 == m && $2 ~ /^v/ { print $2; exit }' "$MOD/go.mod"
}
K8S_VERSION="$(modver k8s.io/kubernetes)"
ETCD_VERSION="$(modver go.etcd.io/etcd/server/v3)"
[[ -n "$K8S_VERSION" && -n "$ETCD_VERSION" ]] || { log "cannot read versions from $MOD/go.mod"; exit 1; }

K8S_MINOR="${K8S_VERSION#v1.}"
K8S_MINOR="${K8S_MINOR%%.*}"
# Same version stamping as upstream release builds (hack/lib/version.sh), so
# kube-apiserver --version and /version report the real release; -s -w as
# upstream strips release binaries too.
VPKG=k8s.io/component-base/version
APISERVER_LDFLAGS="-s -w -X $VPKG.gitVersion=$K8S_VERSION -X $VPKG.gitMajor=1 -X $VPKG.gitMinor=$K8S_MINOR -X $VPKG.gitTreeState=clean"
ETCD_LDFLAGS="-s -w"

sumfiles() {
	if command -v sha256sum >/dev/null; then cat "$@" | sha256sum | cut -d' ' -f1
	else cat "$@" | shasum -a 256 | cut -d' ' -f1; fi
}

want_stamp="$(
	cd "$MOD"
	printf 'kubernetes=%s\n' "$K8S_VERSION"
	printf 'etcd=%s\n' "$ETCD_VERSION"
	printf 'go=%s %s/%s\n' "$(go env GOVERSION)" "$(go env GOOS)" "$(go env GOARCH)"
	printf 'apiserver-ldflags=%s\n' "$APISERVER_LDFLAGS"
	printf 'etcd-ldflags=%s\n' "$ETCD_LDFLAGS"
	printf 'inputs=%s\n' "$(sumfiles go.mod go.sum cmd/etcd/main.go)"
)"

if [[ -z "${ENVTEST_FORCE:-}" && -x "$BIN/etcd" && -x "$BIN/kube-apiserver" && -f "$STAMP" ]] &&
	[[ "$(cat "$STAMP")" == "$want_stamp" ]]; then
	log "up to date (kube-apiserver $K8S_VERSION, etcd $ETCD_VERSION)"
	echo "$BIN"
	exit 0
fi

mkdir -p "$BIN"
TMP="$(mktemp -d "$BIN/.build.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
rm -f "$STAMP"

cd "$MOD"
log "downloading modules"
go mod download >&2

build() { # name, ldflags, package
	local start=$SECONDS
	log "building $1"
	go build -p "$ENVTEST_BUILD_P" -trimpath -ldflags "$2" -o "$TMP/$1" "$3" >&2
	log "built $1 in $((SECONDS - start))s"
}
build etcd "$ETCD_LDFLAGS" ./cmd/etcd
build kube-apiserver "$APISERVER_LDFLAGS" k8s.io/kubernetes/cmd/kube-apiserver

# Smoke check: both must run, and envtest probes flags through --help.
"$TMP/etcd" --version >&2
"$TMP/kube-apiserver" --version >&2

mv -f "$TMP/etcd" "$BIN/etcd"
mv -f "$TMP/kube-apiserver" "$BIN/kube-apiserver"
printf '%s\n' "$want_stamp" >"$STAMP"
log "done"
echo "$BIN"
