#!/usr/bin/env bash
# The live generators' KID (not their EMA) of every finished run of the named benches:
#
#   bash benchmarks/claims/live.sh e1-plain e1-augment ...
#
# Runs `mtgan eval RUN --metrics kid --live` on each run in runs/claims/<bench>/runs.csv that
# has no eval-live.json yet (the final checkpoint; eval.json is kept), then copies each run's
# live KID into benchmarks/claims/<bench>/live.csv (path, kid) for the tables' --live view.
set -euo pipefail
cd "$(dirname "$0")/../.."
for name in "$@"; do
    runs="runs/claims/$name/runs.csv"
    [[ -f $runs ]] || { echo "no $runs" >&2; exit 2; }
    out="benchmarks/claims/$name/live.csv"
    echo "path,kid" > "$out"
    python -c "import csv, sys; [print(r['path']) for r in csv.DictReader(open(sys.argv[1]))]" "$runs" |
        while read -r run; do
            [[ -f $run/eval-live.json ]] || mtgan eval "$run" --metrics kid --live >/dev/null
            python -c "import json, sys; print(f\"{sys.argv[1]},{json.load(open(sys.argv[1] + '/eval-live.json'))['kid']}\")" "$run" >> "$out"
        done
    echo "$name: $(($(wc -l < "$out") - 1)) runs → $out"
done
