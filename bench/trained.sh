#!/usr/bin/env bash
# The trained-model benchmarks of docs/performance.md ("Trained model: stories260K"):
#  1. a whole stories260K attention layer (8 query heads on 4 K/V heads, RoPE, W_O) at n = 512 on
#     TinyStories to tol 1e-10, every layer: the solve's own seconds (`seconds` of measure's JSON);
#  2. with --reproduce, the trained-model part of `lipattn reproduce` (--quick, or the full one with
#     --full), wall and CPU seconds from /usr/bin/time.
# Usage: bench/trained.sh [--reproduce] [--full]   (run from the checkout, after building lipattn)
set -euo pipefail
cd "$(dirname "$0")/.."
data="${LIPATTN_DATA_DIR:-../shared/data}"
model="$data/stories260K/stories260K.bin"
text="$data/text/tinystories-valid-head.txt"
grep -m1 "model name" /proc/cpuinfo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for layer in 0 1 2 3 4; do
  /usr/bin/time -f "layer $layer: process %e s wall, %U s user, %S s system" \
    build/lipattn measure --model "$model" --layer "$layer" --text "$text" --n 512 --tol 1e-10 --json
done
if [[ "${1:-}" == "--reproduce" ]]; then
  quick="--quick"
  [[ "${2:-}" == "--full" ]] && quick=""
  out="$(mktemp -d)/reproduce"
  /usr/bin/time -f "reproduce --only trained $quick: %e s wall, %U s user, %S s system, %M KiB peak" \
    build/lipattn reproduce --out "$out" $quick --only trained --no-progress
  echo "report: $out/report.md"
fi
