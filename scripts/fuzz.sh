#!/usr/bin/env bash
# Runs every Go fuzz target in the repository for a short, bounded time each.
#
#   scripts/fuzz.sh                    # every target, FUZZTIME (default 10s) each
#   FUZZTIME=5m scripts/fuzz.sh        # longer
#   FUZZTIME=20000x scripts/fuzz.sh    # a number of inputs: no wall-clock deadline, so no
#                                      # spurious "context deadline exceeded" (go.dev/issue/75804)
#   scripts/fuzz.sh FuzzExtract        # only the targets named
#
# A failing input is saved by `go test` under the package's testdata/fuzz/<Target>/; commit it
# with the fix so it stays a regression test. Exits non-zero if any target failed.
set -euo pipefail
cd "$(dirname "$0")/.."

GO="${GO:-go}"
FUZZTIME="${FUZZTIME:-10s}"
# Minimizing a new input can otherwise take a minute and eat the whole budget.
FUZZMINIMIZETIME="${FUZZMINIMIZETIME:-5s}"

# "<package dir> <target>" for every `func FuzzXxx(f *testing.F)` in a _test.go file.
mapfile -t targets < <(grep -rEo --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.git \
	'^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' . |
	sed -E 's#^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+).*#\1 \2#' | sort -u)

if [ "${#targets[@]}" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

failed=()
ran=0
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	if [ "$#" -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
		continue
	fi
	ran=$((ran + 1))
	# FUZZTIME_<Target> overrides FUZZTIME for one target (some run far fewer inputs a second).
	budget_var="FUZZTIME_$name"
	budget="${!budget_var:-$FUZZTIME}"
	echo "fuzz: $name in $pkg for $budget"
	if ! "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$budget" -fuzzminimizetime "$FUZZMINIMIZETIME" "$pkg"; then
		failed+=("$name ($pkg)")
	fi
done

if [ "$ran" -eq 0 ]; then
	echo "fuzz: no target matches $*" >&2
	exit 1
fi
if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz: $ran targets passed"
