#!/bin/bash
# The long-sequence benchmark (issue 6, docs/performance.md "Long sequences"):
#   bench/streaming.sh [--quick] [OUT_DIR]
# Builds bench/streaming_bench in $BUILD_DIR (default <checkout>/build-bench) and runs, one process
# per configuration (so each peak RSS is its own), with 2 threads:
#   1. one head, d = k = 64, float64, unmasked: time per JᵀJ product against n for both modes
#      (stored up to n = 16,384: 4 GiB), then Lanczos to 1e-6 at n = 65,536 streaming;
#   2. the GPT-2-shaped layer (d = 768, 12 heads, causal, W_O, biases) at n = 8,192: Lanczos to 1e-6
#      in both modes.
# Each line of OUT_DIR/streaming.jsonl is one configuration (streaming_bench's JSON plus the
# process's user+sys CPU seconds from /usr/bin/time). --quick stops at n = 16,384 and skips GPT-2.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC/build-bench}
. "$SRC/bench/streaming_common.sh"
streaming_args --quick 2,12 "$@"
QUICK=$FLAG_SET
streaming_setup streaming
SIZES="1024 4096 16384"
[ $QUICK = 1 ] || SIZES="$SIZES 32768 65536"
for n in $SIZES; do
  products=$([ "$n" -le 4096 ] && echo 5 || echo 1)
  [ "$n" -le 16384 ] && run --n "$n" --storage stored --products "$products"
  run --n "$n" --storage streaming --products "$products"
done
if [ $QUICK = 0 ]; then
  run --n 65536 --storage streaming --products 0 --solve --tol 1e-6 --krylov 10
  run --n 8192 --gpt2 --storage stored --products 1 --solve --tol 1e-6 --krylov 10
  run --n 8192 --gpt2 --storage streaming --products 1 --solve --tol 1e-6 --krylov 10
fi
echo "results: $RESULTS"
