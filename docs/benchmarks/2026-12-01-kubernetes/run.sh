#!/bin/bash
# Five demo runs per runtime and strategy (the ledger at 40 msg/s from 3 producers, 8 MB of extra state);
# the last stdout line of each is its MigrationReport. Usage: run.sh [out-dir]  (then: summary.py out-dir)
set -euo pipefail
OUT=${1:-bench-results/k8s-demo}
mkdir -p "$OUT"
cd "$(dirname "$0")/../../.."
for rt in ${RUNTIMES:-kubernetes local}; do
  for st in shadow stop-and-copy; do
    for i in 1 2 3 4 5; do
      node dist/cli/main.js demo --runtime "$rt" --strategy "$st" --service ledger --rate 40 --json 2>/dev/null | tail -1 > "$OUT/$rt-$st-$i.json"
      echo "$rt $st $i"
    done
  done
done
