#!/bin/bash
# The issue-2 benchmark in one command (docs/performance.md):
#   bench/run.sh [--no-blas] [--no-peer] [--sizes 64,256,1024] [OUT_DIR]
# Builds bench/jtj_bench (Release) in $BUILD_DIR (default <checkout>/build-bench) and, with
# -DLIPATTN_USE_BLAS=ON, in $BUILD_DIR-blas; runs the C++ benchmarks, the PyTorch peer on the very
# same layer and inputs, checks that both find the same σ, and prints the tables of
# docs/performance.md (also written to OUT_DIR/summary.md; default OUT_DIR: $BUILD_DIR/out).
# Two threads everywhere. Once built, expect about 6–8 minutes on a quiet 2-core machine (most of it
# the PyTorch peer at n = 1024); the load average is logged before each step (OUT_DIR/run.log).
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC/build-bench}
BLAS=1
PEER=1
SIZES=64,256,1024
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-blas) BLAS=0 ;;
    --no-peer) PEER=0 ;;
    --sizes) SIZES=$2; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) OUT=$1 ;;
  esac
  shift
done
OUT=${OUT:-$BUILD_DIR/out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

export OMP_NUM_THREADS=2          # Eigen's GEMMs and lipattn's loop over heads
export OPENBLAS_NUM_THREADS=2     # the OpenBLAS build and PyTorch's BLAS
export OMP_PROC_BIND=${OMP_PROC_BIND:-false}

log() { echo "== $* (load: $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$OUT/run.log"; }
: > "$OUT/run.log"
log "start $(date -Is)"

build() {  # build DIR [extra cmake args]
  local dir=$1; shift
  cmake -S "$SRC" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DLIPATTN_BUILD_BENCH=ON "$@" > "$OUT/cmake-$(basename "$dir").log"
  cmake --build "$dir" --target jtj_bench -j2 >> "$OUT/cmake-$(basename "$dir").log"
}
log "building $BUILD_DIR"
build "$BUILD_DIR" -DLIPATTN_USE_BLAS=OFF
if [ "$BLAS" = 1 ]; then
  log "building $BUILD_DIR-blas (EIGEN_USE_BLAS, OpenBLAS)"
  build "$BUILD_DIR-blas" -DLIPATTN_USE_BLAS=ON
fi

# Only the requested sizes.
SIZE_RE="($(echo "$SIZES" | sed 's/,/|/g'))"
log "jtj_bench: GEMM rate, products, Lanczos to 1e-8 (plain Eigen + OpenMP)"
"$BUILD_DIR/jtj_bench" --export_dir="$OUT" \
  --benchmark_filter="BM_Gemm|BM_[A-Za-z]+<f(64|32)>/$SIZE_RE(/|\$)" \
  --benchmark_out="$OUT/jtj_bench.json" --benchmark_out_format=json 2>&1 | grep -v '^\*\*\*WARNING' | tee -a "$OUT/run.log"
if [ "$BLAS" = 1 ]; then
  log "jtj_bench with OpenBLAS: GEMM rate and float64 products"
  "$BUILD_DIR-blas/jtj_bench" \
    --benchmark_filter="BM_Gemm<f64>|BM_JtJ<f64>/$SIZE_RE(/|\$)" \
    --benchmark_out="$OUT/jtj_bench_blas.json" --benchmark_out_format=json 2>&1 | grep -v '^\*\*\*WARNING' | tee -a "$OUT/run.log"
fi
if [ "$PEER" = 1 ]; then
  log "PyTorch peer (functorch + scipy eigsh, float64, 2 threads)"
  /usr/bin/python3 "$SRC/bench/peer_torch.py" "$OUT" --sizes "$SIZES" --tol 1e-8 --threads 2 | tee -a "$OUT/run.log"
fi
log "end $(date -Is)"
echo
/usr/bin/python3 "$SRC/bench/summarize.py" "$OUT"
