#!/usr/bin/env bash
# Float32 against float64 end to end (issue 6): alternating solves of the GPT-2-shaped layer at
# n = 1024, so a drift of the machine's speed hits both. Prints "round dtype wall user sys maxRSS_KB".
#   bench/f32_pairs.sh [BINARY] [DIR] [ROUNDS]
# DIR holds layer.safetensors and X_1024.npy (build-bench/jtj_bench --export_dir=DIR writes them).
set -euo pipefail
binary=${1:-build/lipattn}
dir=${2:-build-bench/out}
rounds=${3:-6}
for r in $(seq 1 "$rounds"); do
  for dtype in f64 f32; do
    /usr/bin/time -f "$r $dtype %e %U %S %M" "$binary" measure --weights "$dir/layer.safetensors" \
      --input "$dir/X_1024.npy" --heads 12 --causal --method lanczos --tol 1e-6 --dtype "$dtype" --json \
      2>&1 >"$dir/f32_pair_${r}_$dtype.json" | grep -v products
  done
done
