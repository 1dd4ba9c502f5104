#!/usr/bin/env bash
# hack/kernels.sh — fetch Debian's own amd64 kernels for the qemu OOM matrix.
#
# For each suite (bullseye → 5.10, bookworm → 6.1, trixie → 6.12) this
# resolves the current linux-image-<abi>-amd64 package behind the
# linux-image-amd64 meta package, downloads it with `apt-get download`
# through a PRIVATE apt configuration (own sources list, lists and cache
# directories under .cache/kernels/apt/<suite>; the machine's apt state is
# never touched) and extracts /boot/vmlinuz-* and /boot/config-* with dpkg-deb.
#
# The mirror URI is read at run time from the machine's own apt sources
# (/etc/apt/sources.list, /etc/apt/sources.list.d/*.list and *.sources), so no
# mirror host name lives in this repository. OOMSCOPE_DEBIAN_MIRROR overrides it.
#
# Result, per kernel, in .cache/kernels/<name>/ (name = debian-<major.minor>):
#   vmlinuz        the kernel image
#   config         the kernel's /boot/config-*
#   kernel.env     NAME= SUITE= PACKAGE= VERSION= RELEASE= (shell-sourceable)
# A present kernel.env + vmlinuz is reused; FORCE=1 refetches.
#
# Usage: hack/kernels.sh [suite ...]     (default: bullseye bookworm trixie)
# Requires: apt-get, dpkg-deb, debian-archive-keyring.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${OOMSCOPE_KERNEL_CACHE:-$REPO/.cache/kernels}
KEYRING=${OOMSCOPE_DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
ARCH=amd64

log() { printf 'kernels.sh: %s\n' "$*" >&2; }
die() { printf '\nkernels.sh: ERROR: %s\n\n' "$*" >&2; exit 1; }

# suite -> expected upstream major.minor (a guard against a suite that moved on)
declare -A WANT=([bullseye]=5.10 [bookworm]=6.1 [trixie]=6.12)

is_debian_codename() {
	case "$1" in
	buster | bullseye | bookworm | trixie | forky | duke | sid | stable | testing | unstable | oldstable | oldoldstable) return 0 ;;
	esac
	return 1
}

# find_mirror prints the first Debian archive URI configured on this machine:
# a "deb" source whose suite is a plain Debian codename (not -security,
# -updates, -backports) and whose components include main.
find_mirror() {
	local f
	{
		[[ -f /etc/apt/sources.list ]] && list_uris /etc/apt/sources.list
		for f in /etc/apt/sources.list.d/*.list; do
			[[ -f $f ]] && list_uris "$f"
		done
		for f in /etc/apt/sources.list.d/*.sources; do
			[[ -f $f ]] && deb822_uris "$f"
		done
	} | head -n1
}

# list_uris parses one-line-style sources: deb [opts] URI suite comp...
list_uris() {
	local line typ uri suite comps
	while IFS= read -r line || [[ -n $line ]]; do
		line=${line%%#*}
		# drop an [options] block
		line=$(sed -E 's/\[[^]]*\]//' <<<"$line")
		read -r typ uri suite comps <<<"$line" || true
		[[ $typ == deb ]] || continue
		is_debian_codename "$suite" || continue
		[[ " $comps " == *" main "* ]] || continue
		printf '%s\n' "${uri%/}"
	done <"$1"
}

# deb822_uris parses deb822 *.sources stanzas (blank-line separated).
deb822_uris() {
	awk '
	function flush() {
		if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no" && comps ~ /(^| )main( |$)/) {
			n = split(suites, s, " ")
			ok = 0
			for (i = 1; i <= n; i++)
				if (s[i] ~ /^(buster|bullseye|bookworm|trixie|forky|duke|sid|stable|testing|unstable|oldstable|oldoldstable)$/) ok = 1
			if (ok) { m = split(uris, u, " "); for (i = 1; i <= m; i++) { sub(/\/$/, "", u[i]); print u[i] } }
		}
		types = uris = suites = comps = ""; enabled = "yes"
	}
	BEGIN { enabled = "yes" }
	/^[ \t]*#/ { next }
	/^[ \t]*$/ { flush(); next }
	{
		key = $1; sub(/:$/, "", key); key = tolower(key)
		val = $0; sub(/^[^:]*:[ \t]*/, "", val)
		if (key == "types") types = val
		else if (key == "uris") uris = val
		else if (key == "suites") suites = val
		else if (key == "components") comps = val
		else if (key == "enabled") enabled = val
	}
	END { flush() }' "$1"
}

# apt_private runs an apt command against the private configuration of $SUITE.
apt_private() {
	local cmd=$1
	shift
	local d=$CACHE/apt/$SUITE
	"$cmd" \
		-o Dir::Etc::sourcelist="$d/sources.list" \
		-o Dir::Etc::sourceparts=- \
		-o Dir::Etc::preferences=/dev/null \
		-o Dir::Etc::preferencesparts=- \
		-o Dir::State="$d/state" \
		-o Dir::State::Lists="$d/lists" \
		-o Dir::State::status="$d/state/status" \
		-o Dir::Cache="$d/cache" \
		-o Dir::Cache::archives="$d/cache/archives" \
		-o Debug::NoLocking=1 \
		-o APT::Architecture=$ARCH \
		-o APT::Architectures::=$ARCH \
		-o Acquire::Languages=none \
		-o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false \
		-o Acquire::Retries=3 \
		"$@"
}

fetch_suite() {
	SUITE=$1
	local want=${WANT[$SUITE]:-}
	[[ -n $want ]] || die "unknown suite '$SUITE' (known: ${!WANT[*]})"
	local name=debian-$want
	local out=$CACHE/$name
	if [[ ${FORCE:-0} != 1 && -s $out/vmlinuz && -s $out/kernel.env ]]; then
		log "$name: cached ($(. "$out/kernel.env" && echo "$PACKAGE $VERSION"))"
		return 0
	fi
	local d=$CACHE/apt/$SUITE
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/state" "$d/debs"
	: >"$d/state/status"
	printf 'deb [signed-by=%s] %s %s main\n' "$KEYRING" "$MIRROR" "$SUITE" >"$d/sources.list"

	log "$name: apt-get update ($SUITE)"
	if ! apt_private apt-get -q update >"$d/update.log" 2>&1; then
		cat "$d/update.log" >&2
		die "kernel $name ($SUITE): apt-get update of the private $SUITE index failed (see above)"
	fi
	if grep -Eq '^(W|E):' "$d/update.log"; then
		cat "$d/update.log" >&2
		die "kernel $name ($SUITE): apt-get update reported errors/warnings (see above)"
	fi

	# linux-image-amd64 -> linux-image-<abi>-amd64
	local pkg
	pkg=$(apt_private apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	[[ -n $pkg ]] || die "kernel $name ($SUITE): cannot resolve linux-image-amd64 to a linux-image-<abi>-amd64 package"

	# The signed package normally carries /boot/vmlinuz; fall back to -unsigned.
	local cand deb=
	for cand in "$pkg" "${pkg}-unsigned"; do
		rm -f "$d/debs"/*.deb
		log "$name: apt-get download $cand"
		if ! (cd "$d/debs" && apt_private apt-get -q download "$cand") >"$d/download.log" 2>&1; then
			cat "$d/download.log" >&2
			log "$name: download of $cand failed"
			continue
		fi
		deb=$(ls "$d/debs"/*.deb 2>/dev/null | head -n1)
		if [[ -n $deb ]] && dpkg-deb -c "$deb" >"$d/contents.txt" && grep -Eq '\./boot/vmlinuz-' "$d/contents.txt"; then
			break
		fi
		log "$name: $cand has no /boot/vmlinuz, trying the next candidate"
		deb=
	done
	[[ -n $deb ]] || die "kernel $name ($SUITE): could not fetch a linux-image package with /boot/vmlinuz (tried $pkg, ${pkg}-unsigned)"

	local x=$d/extract
	rm -rf "$x"
	mkdir -p "$x"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$x" --wildcards './boot/*' ||
		die "kernel $name ($SUITE): extracting /boot from $deb failed"
	local vmlinuz config release
	vmlinuz=$(ls "$x"/boot/vmlinuz-* | head -n1)
	config=$(ls "$x"/boot/config-* 2>/dev/null | head -n1 || true)
	[[ -s $vmlinuz ]] || die "kernel $name ($SUITE): no vmlinuz in $deb"
	release=${vmlinuz##*/vmlinuz-}
	case "$release" in
	"$want".*) ;;
	*) die "kernel $name ($SUITE): got release $release, expected $want.x" ;;
	esac
	local version
	version=$(dpkg-deb -f "$deb" Version)

	rm -rf "$out"
	mkdir -p "$out"
	cp "$vmlinuz" "$out/vmlinuz"
	[[ -n $config ]] && cp "$config" "$out/config"
	cat >"$out/kernel.env" <<EOF
NAME=$name
SUITE=$SUITE
PACKAGE=$(dpkg-deb -f "$deb" Package)
VERSION=$version
RELEASE=$release
DEB=${deb##*/}
EOF
	rm -rf "$x"
	log "$name: $(dpkg-deb -f "$deb" Package) $version -> $out/vmlinuz"
}

main() {
	command -v apt-get >/dev/null || die "apt-get not found"
	command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
	[[ -r $KEYRING ]] || die "Debian keyring $KEYRING not readable (apt-get install debian-archive-keyring)"
	local suites=("$@")
	[[ ${#suites[@]} -gt 0 ]] || suites=(bullseye bookworm trixie)

	# Only resolve the mirror when something has to be fetched.
	local need=0 s
	for s in "${suites[@]}"; do
		[[ ${FORCE:-0} == 1 || ! -s $CACHE/debian-${WANT[$s]:-x}/kernel.env ]] && need=1
	done
	MIRROR=
	if [[ $need == 1 ]]; then
		MIRROR=${OOMSCOPE_DEBIAN_MIRROR:-$(find_mirror)}
		[[ -n $MIRROR ]] || die "no Debian mirror found in /etc/apt/sources.list{,.d/*.list,.d/*.sources}; set OOMSCOPE_DEBIAN_MIRROR"
		log "mirror (from the machine's apt sources): $MIRROR"
	fi
	mkdir -p "$CACHE"
	local failed=()
	for s in "${suites[@]}"; do
		if ! (fetch_suite "$s"); then
			failed+=("debian-${WANT[$s]:-?} ($s)")
		fi
	done
	if [[ ${#failed[@]} -gt 0 ]]; then
		die "failed to fetch kernel(s): ${failed[*]}"
	fi
}

main "$@"
