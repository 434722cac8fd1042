#!/bin/bash
# Issue 15's whole-model speed benchmark in one command (docs/performance.md, "Whole model"):
#   bench/whole_model.sh [--n 128] [--tol 1e-8] [--mixed-tol 1e-6] [--no-peer] [OUT_DIR]
# ‖D model(X)‖₂ of a whole random GPT-2 (random:gpt2, seed 0: 12 layers, d = 768) from the embedding
# output to ln_f, at n seeded tokens: lipattn in float64 (plain) and with mixed precision
# (bench/whole_model_bench.cpp, which also times the products against the measured dgemm rate), then
# the PyTorch peer (bench/peer_whole_model.py: functorch + scipy eigsh) on the weights and X lipattn
# exports. Prints the table (also OUT_DIR/summary.md; default OUT_DIR: $BUILD_DIR/out-whole-model) with
# the times, the ratio, the value agreement and the products' share of the dgemm rate. Two threads;
# the load average and CPU are logged (OUT_DIR/run.log). About 5 minutes on a quiet 2-core machine.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC/build-bench}
N=128
TOL=1e-8
MIXED_TOL=1e-6
PEER=1
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N=$2; shift ;;
    --tol) TOL=$2; shift ;;
    --mixed-tol) MIXED_TOL=$2; shift ;;
    --no-peer) PEER=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) OUT=$1 ;;
  esac
  shift
done
OUT=${OUT:-$BUILD_DIR/out-whole-model}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2

log() { echo "== $* (load: $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$OUT/run.log"; }
: > "$OUT/run.log"
log "start $(date -Is), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, commit $(git -C "$SRC" rev-parse --short HEAD)"
log "building $BUILD_DIR"
cmake -S "$SRC" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DLIPATTN_BUILD_BENCH=ON -DPYTHON_EXECUTABLE=/usr/bin/python3 > "$OUT/cmake.log"
cmake --build "$BUILD_DIR" --target whole_model_bench -j2 >> "$OUT/cmake.log"

log "lipattn float64 (plain), n = $N, tol $TOL; dgemm rate and products"
"$BUILD_DIR/whole_model_bench" --n "$N" --tol "$TOL" --products 3 --export "$OUT" | tee "$OUT/lipattn_plain.json" | tee -a "$OUT/run.log"
log "lipattn mixed precision (--mixed-tol $MIXED_TOL)"
"$BUILD_DIR/whole_model_bench" --n "$N" --tol "$TOL" --mixed-tol "$MIXED_TOL" --products 0 | tee "$OUT/lipattn_mixed.json" | tee -a "$OUT/run.log"
if [ "$PEER" = 1 ]; then
  log "PyTorch peer (functorch + scipy eigsh, float64, 2 threads)"
  /usr/bin/python3 "$SRC/bench/peer_whole_model.py" "$OUT" --tol "$TOL" --threads 2 | tee "$OUT/peer.json" | tee -a "$OUT/run.log"
fi
log "end $(date -Is)"
echo
/usr/bin/python3 - "$OUT" <<'EOF' | tee "$OUT/summary.md"
import json, os, sys
out = sys.argv[1]
load = lambda name: json.load(open(os.path.join(out, name))) if os.path.exists(os.path.join(out, name)) else None
plain, mixed, peer = load("lipattn_plain.json"), load("lipattn_mixed.json"), load("peer.json")
print("| solver | products (f64 + f32) | solve s (CPU s) | σ | relative residual |")
print("|---|---|---|---|---|")
for name, r in (("lipattn float64", plain), ("lipattn mixed", mixed)):
    print(f"| {name} | {r['matvecs'] - r['f32_matvecs']} + {r['f32_matvecs']} | {r['solve_seconds']:.1f} "
          f"({r['solve_cpu_seconds']:.1f}) | {r['sigma']:.15g} | {r['relative_residual']:.2g} |")
if peer:
    print(f"| PyTorch peer ({peer['product_method']}) | {peer['matvecs']} | {peer['eigsh_seconds']:.1f} "
          f"({peer['eigsh_cpu_seconds']:.1f}) | {peer['sigma']:.15g} | {peer['relative_residual']:.2g} |")
print()
print(f"GEMM: dgemm {plain['gemm_f64_gflops']:.1f} GFLOP/s, sgemm {plain['gemm_f32_gflops']:.1f} GFLOP/s (best of the "
      f"product's shapes and 2048³). One JᵀJ product: {plain['gflop_per_product']:.1f} GFLOP; float64 "
      f"{plain['product_f64_seconds']:.3f} s = {plain['product_f64_gflops']:.1f} GFLOP/s "
      f"({100 * plain['product_f64_gflops'] / plain['gemm_f64_gflops']:.0f}% of dgemm; target ≥ 60%), float32 "
      f"{plain['product_f32_seconds']:.3f} s = {plain['product_f32_gflops']:.1f} GFLOP/s "
      f"({100 * plain['product_f32_gflops'] / plain['gemm_f32_gflops']:.0f}% of sgemm).")
best = min(plain["solve_seconds"], mixed["solve_seconds"])
print(f"Solve to tol {plain['tol']:g}: {best:.1f} s (target < 60 s): {'MET' if best < 60 else 'NOT MET'}")
if peer:
    rel = abs(mixed["sigma"] - peer["sigma"]) / peer["sigma"]
    rel_plain = abs(plain["sigma"] - peer["sigma"]) / peer["sigma"]
    print(f"Against the peer: {peer['eigsh_seconds'] / plain['solve_seconds']:.1f}× (float64), "
          f"{peer['eigsh_seconds'] / mixed['solve_seconds']:.1f}× (mixed; target ≥ 5×); σ relative difference "
          f"{rel_plain:.1e} (float64), {rel:.1e} (mixed): {'PASS' if max(rel, rel_plain) <= 1e-8 else 'FAIL'} (≤ 1e-8)")
EOF
