#!/usr/bin/env bash
# A solve alone and beside a competing lipattn solve (issue 17; docs/performance.md, "Under load"):
#   bench/under_load.sh [--runs R] [--sizes 16,1024] [--tol T] [--modes adaptive,fixed] [--binary PATH]
# For each size n (the embedded default: a GPT-2-shaped layer at n random tokens) it times
# `lipattn measure --demo-n n --json --quiet` R times alone and R times while a second lipattn
# (`measure --demo-n 128 --tol 1e-12 --max-iter 100000`, restarted whenever it ends, two threads)
# runs, alternating alone / beside, and prints the medians and their ratio. Modes: `adaptive` is the
# product as shipped; `fixed` sets LIPATTN_ADAPT_THREADS=0 for both processes, which keeps the thread
# count at the number of cores whatever the load (the behaviour before common/threads.h).
# Prints the CPU model, the commit and the load average first: run it on an otherwise idle machine.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=5
SIZES=16,1024
TOL=1e-10
MODES=adaptive,fixed
BIN=$SRC/build/lipattn
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift ;;
    --sizes) SIZES=$2; shift ;;
    --tol) TOL=$2; shift ;;
    --modes) MODES=$2; shift ;;
    --binary) BIN=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "under_load.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$BIN" ] || { echo "under_load.sh: $BIN is not built (cmake --build build --target lipattn)" >&2; exit 2; }

echo "cpu      $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
echo "commit   $(git -C "$SRC" rev-parse --short HEAD)$(git -C "$SRC" diff --quiet || echo ' (modified)')"
echo "date     $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) before the first run"
echo "runs     $RUNS per cell, alternating alone / beside; tol $TOL"

COMPETITOR=""
start_competitor() {  # the second lipattn, restarted whenever it finishes
  (
    while true; do
      "$BIN" measure --demo-n 128 --tol 1e-12 --max-iter 100000 --json --quiet >/dev/null 2>&1 || true
    done
  ) &
  COMPETITOR=$!
  sleep 1  # let it reach its solve
}
stop_competitor() {
  [ -n "$COMPETITOR" ] || return 0
  local children
  children=$(pgrep -P "$COMPETITOR" || true)
  kill "$COMPETITOR" 2>/dev/null || true
  [ -n "$children" ] && kill $children 2>/dev/null || true
  wait "$COMPETITOR" 2>/dev/null || true
  COMPETITOR=""
}
trap stop_competitor EXIT

seconds_of() {  # wall seconds of one solve
  local t0 t1
  t0=$(date +%s.%N)
  "$BIN" measure --demo-n "$1" --tol "$TOL" --json --quiet >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }

printf '\n%-9s %6s %12s %12s %8s   %s\n' mode n "alone (s)" "beside (s)" ratio "all runs alone | beside"
for mode in ${MODES//,/ }; do
  case "$mode" in
    adaptive) unset LIPATTN_ADAPT_THREADS ;;
    fixed) export LIPATTN_ADAPT_THREADS=0 ;;
    *) echo "under_load.sh: unknown mode $mode" >&2; exit 2 ;;
  esac
  for n in ${SIZES//,/ }; do
    alone="" beside=""
    for _ in $(seq "$RUNS"); do
      alone+=" $(seconds_of "$n")"
      start_competitor
      beside+=" $(seconds_of "$n")"
      stop_competitor
    done
    a=$(echo "$alone" | median)
    b=$(echo "$beside" | median)
    printf '%-9s %6s %12s %12s %8.2f   %s |%s\n' "$mode" "$n" "$a" "$b" "$(echo "$b / $a" | bc -l)" "$alone" "$beside"
  done
done
