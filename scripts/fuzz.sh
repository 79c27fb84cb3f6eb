#!/usr/bin/env bash
# Runs every fuzz target for the given time (default 10s) and prints the
# executions each made. Usage: scripts/fuzz.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
total=0
for target in .:FuzzWALReader .:FuzzSegmentName .:FuzzSegmentDecode ./cmd/litestream:FuzzParseConfig; do
	pkg=${target%%:*}; name=${target##*:}
	out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" -fuzzminimizetime 200x "$pkg" 2>&1) || { echo "$out"; echo "fuzz $name FAILED"; exit 1; }
	execs=$(echo "$out" | grep -o 'execs: [0-9]*' | tail -1 | grep -o '[0-9]*' || echo 0)
	echo "fuzz $name: $execs executions in $t, no failure"
	total=$((total + execs))
done
echo "FIGURE fuzz executions: $total"
