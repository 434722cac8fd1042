#!/bin/bash
# The Lanczos solver's regression check: σ to 1e-12 relative and the same product counts, between two
# builds of lipattn (e.g. before and after a change to src/spectral/; docs/theory.md §4.1).
#   bench/lanczos_regression.sh run BIN DIR        # every case below, one JSON line per case in DIR
#   bench/lanczos_regression.sh compare DIR_A DIR_B  # the table; exit 1 if a case differs
# `run` skips the cases DIR already holds, so an interrupted run resumes. Products run on two threads;
# the whole set takes about 5 minutes on a quiet 2-core machine (the n = 256 cases most of it).
set -euo pipefail

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

# name|arguments of `lipattn measure` (the embedded GPT-2-shaped layer is causal; bert is not)
CASES=(
  "demo16_tol8|--demo-n 16 --method lanczos --tol 1e-8 --seed 0"
  "demo16_tol10|--demo-n 16 --method lanczos --tol 1e-10 --seed 1"
  "demo64_tol8|--demo-n 64 --method lanczos --tol 1e-8 --seed 0"
  "demo64_tol10|--demo-n 64 --method lanczos --tol 1e-10 --seed 2"
  "demo64_krylov6|--demo-n 64 --method lanczos --tol 1e-10 --krylov 6 --seed 3"
  "demo64_krylov40|--demo-n 64 --method lanczos --tol 1e-10 --krylov 40 --seed 4"
  "demo64_f32|--demo-n 64 --method lanczos --tol 1e-6 --dtype f32 --seed 0"
  "demo64_streaming|--demo-n 64 --method lanczos --tol 1e-8 --storage streaming --seed 5"
  "demo256_tol8|--demo-n 256 --method lanczos --tol 1e-8 --seed 0"
  "demo256_tol10|--demo-n 256 --method lanczos --tol 1e-10 --seed 0"
  "bert16_noncausal|--model random:bert-base-uncased --layer 0 --ids 101,7592,2088,2003,1037,3231,1997,1996,2034,2154,2005,2111,2000,2022,2182,102 --method lanczos --tol 1e-10"
)

run() {
  local bin=$1 dir=$2
  mkdir -p "$dir"
  for c in "${CASES[@]}"; do
    local name=${c%%|*} args=${c#*|}
    [ -s "$dir/$name.json" ] && continue
    # shellcheck disable=SC2086
    "$bin" measure $args --json 2>/dev/null | tail -n 1 > "$dir/$name.json.tmp"
    mv "$dir/$name.json.tmp" "$dir/$name.json"
    echo "$name: $(jq -c '{lipschitz, matvecs, seconds}' "$dir/$name.json")"
  done
}

compare() {
  local a=$1 b=$2 status=0
  printf '| case | σ (%s) | σ (%s) | relative difference | products | same |\n|---|---|---|---|---|---|\n' "$a" "$b"
  for c in "${CASES[@]}"; do
    local name=${c%%|*}
    local sa sb ma mb
    sa=$(jq -r .lipschitz "$a/$name.json") sb=$(jq -r .lipschitz "$b/$name.json")
    ma=$(jq -r .matvecs "$a/$name.json") mb=$(jq -r .matvecs "$b/$name.json")
    local rel same
    rel=$(awk -v x="$sa" -v y="$sb" 'BEGIN { d = x - y; if (d < 0) d = -d; printf "%.2e", d / x }')
    same=$(awk -v r="$rel" -v ma="$ma" -v mb="$mb" 'BEGIN { print (r <= 1e-12 && ma == mb) ? "yes" : "NO" }')
    [ "$same" = yes ] || status=1
    printf '| %s | %s | %s | %s | %s / %s | %s |\n' "$name" "$sa" "$sb" "$rel" "$ma" "$mb" "$same"
  done
  return $status
}

case "${1:-}" in
  run) run "$2" "$3" ;;
  compare) compare "$2" "$3" ;;
  *) sed -n '2,7p' "$0"; exit 2 ;;
esac
