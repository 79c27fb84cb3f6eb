#!/usr/bin/env bash
# Runs every fuzz target for the given budget and prints the executions
# each made. Usage: scripts/fuzz.sh [BUDGET], BUDGET an execution count
# such as 100000x (the default), or a duration such as 10s. Counts are what
# make uses: with a duration, Go 1.26's fuzz coordinator can fail a target
# with "context deadline exceeded" at the deadline, with no failing input
# (go.dev/issue/75804, fixed in Go 1.27; seen here under load).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-100000x}
total=0
for target in ./internal/walformat:FuzzWALReader .:FuzzSegmentName .:FuzzSegmentDecode ./cmd/litestream:FuzzParseConfig; do
	pkg=${target%%:*}; name=${target##*:}
	out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" -fuzzminimizetime 200x "$pkg" 2>&1) || { echo "$out"; echo "fuzz $name FAILED"; exit 1; }
	execs=$(echo "$out" | grep -o 'execs: [0-9]*' | tail -1 | grep -o '[0-9]*' || echo 0)
	echo "fuzz $name: $execs executions (budget $t), no failure"
	total=$((total + execs))
done
echo "FIGURE fuzz executions: $total"
