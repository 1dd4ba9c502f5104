#!/usr/bin/env bash
# Lists every fuzz target of the module as <package dir>:<FuzzName>, for
# `make fuzz`.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . | grep -v '^./.cache/' | sort | while read -r f; do
	dir=$(dirname "$f")
	grep -oE '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //' | while read -r fn; do
		echo "$dir:$fn"
	done
done
