#!/bin/bash
# The scaling table (issue 18.4, docs/performance.md, "Session 9 … the scaling table"):
#   bench/scaling.sh [--with-65536] [OUT_DIR]
# One head (heads = 1, k = k_v = d), unmasked, W_Q, W_K, W_V ~ N(0, 1/d), X ~ N(0, 1), 2 threads,
# Lanczos to a relative residual of 1e-6 (Krylov 20), one process per point so that each peak RSS is
# its own. Time to solution against
#   n = 64 .. 16,384 (×4) at d = 64: stored and streaming attention; float64, float32, and float64 with a
#     float32 phase to 1e-5 (--mixed-tol); stored stops at 16,384 (its n × n matrices take 4 GiB there);
#   d = 64 .. 1024 (×2) at n = 1024: the same three precisions, streaming and stored;
#   with --with-65536: n = 32,768 and 65,536 streaming, float64 and mixed (about 40 minutes idle).
# Each line of OUT_DIR/scaling.jsonl is streaming_bench's JSON plus the process's CPU seconds.
# bench/scaling_table.py OUT_DIR/scaling.jsonl prints the table with fitted exponents.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC/build-bench}
. "$SRC/bench/streaming_common.sh"
streaming_args --with-65536 2,13 "$@"
LONG=$FLAG_SET
streaming_setup scaling

SOLVE=(--products 1 --solve --tol 1e-6 --krylov 20)
precisions() {  # precisions ARGS...: the point in float64, float32 and mixed
  run "${SOLVE[@]}" "$@" --dtype f64
  run "${SOLVE[@]}" "$@" --dtype f32
  run "${SOLVE[@]}" "$@" --dtype f64 --mixed-tol 1e-5
}

for n in 64 256 1024 4096 16384; do
  precisions --n "$n" --d 64 --k 64 --storage stored
  precisions --n "$n" --d 64 --k 64 --storage streaming
done
for d in 128 256 512 1024; do  # d = 64 is the n = 1024 point above
  precisions --n 1024 --d "$d" --k "$d" --storage stored
  precisions --n 1024 --d "$d" --k "$d" --storage streaming
done
if [ $LONG = 1 ]; then
  for n in 32768 65536; do
    run "${SOLVE[@]}" --n "$n" --d 64 --k 64 --storage streaming --dtype f64 --mixed-tol 1e-5
    run "${SOLVE[@]}" --n "$n" --d 64 --k 64 --storage streaming --dtype f64
  done
fi
echo "results: $RESULTS"
