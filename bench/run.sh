#!/bin/bash
# The peer comparison of issues 2 and 18 in one command (docs/performance.md):
#   bench/run.sh [--no-blas] [--no-peer] [--no-build] [--sizes 256,1024] [--kinds gpt2,biased] [--mixed-tol 1e-6] [OUT_DIR]
# Builds bench/jtj_bench and bench/solve_bench (Release) in $BUILD_DIR (default <checkout>/build-bench)
# and, unless --no-blas, with -DLIPATTN_USE_BLAS=ON in $BUILD_DIR-blas. Runs the GEMM rate and products
# (jtj_bench), then for every layer kind and n: lipattn's solve to tol 1e-8 in float64 (plain) and the
# mixed-precision path (solve_bench --mixed-tol 1e-6: `lipattn measure --mixed-tol 1e-6`), and the
# PyTorch peer (functorch + scipy eigsh) on the very same layer
# and X; prints the tables (also OUT_DIR/summary.md; default OUT_DIR: $BUILD_DIR/out) with the ratios
# and the σ agreement. Two threads everywhere; the load average and CPU are logged before each step
# (OUT_DIR/run.log). Once built, about 15–20 minutes on a quiet 2-core machine (mostly the peer at n = 1024).
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$SRC/build-bench}
BLAS=1
PEER=1
BUILD=1
SIZES=256,1024
KINDS=gpt2,biased
MIXED_TOL=1e-6
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-blas) BLAS=0 ;;
    --no-peer) PEER=0 ;;
    --no-build) BUILD=0 ;;  # use the binaries already in $BUILD_DIR (and $BUILD_DIR-blas)
    --sizes) SIZES=$2; shift ;;
    --kinds) KINDS=$2; shift ;;
    --mixed-tol) MIXED_TOL=$2; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
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
log "start $(date -Is), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, commit $(git -C "$SRC" rev-parse --short HEAD)"

build() {  # build DIR [extra cmake args]
  local dir=$1; shift
  cmake -S "$SRC" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DLIPATTN_BUILD_BENCH=ON -DPYTHON_EXECUTABLE=/usr/bin/python3 "$@" > "$OUT/cmake-$(basename "$dir").log"
  cmake --build "$dir" --target jtj_bench solve_bench -j2 >> "$OUT/cmake-$(basename "$dir").log"
}
if [ "$BUILD" = 1 ]; then
  log "building $BUILD_DIR"
  build "$BUILD_DIR" -DLIPATTN_USE_BLAS=OFF
fi
if [ "$BLAS" = 1 ] && [ "$BUILD" = 1 ]; then
  log "building $BUILD_DIR-blas (EIGEN_USE_BLAS, OpenBLAS)"
  build "$BUILD_DIR-blas" -DLIPATTN_USE_BLAS=ON
fi

SIZE_RE="($(echo "$SIZES" | sed 's/,/|/g'))"
log "jtj_bench: GEMM rate and products (plain Eigen + OpenMP)"
"$BUILD_DIR/jtj_bench" \
  --benchmark_filter="BM_Gemm|BM_(JtJ|Jvp|Vjp|Forward)<f(64|32)>/$SIZE_RE(/|\$)" \
  --benchmark_out="$OUT/jtj_bench.json" --benchmark_out_format=json 2>&1 | grep -v '^\*\*\*WARNING' | tee -a "$OUT/run.log"
if [ "$BLAS" = 1 ]; then
  log "jtj_bench with OpenBLAS: GEMM rate and float64 products"
  "$BUILD_DIR-blas/jtj_bench" \
    --benchmark_filter="BM_Gemm<f64>|BM_JtJ<f64>/$SIZE_RE(/|\$)" \
    --benchmark_out="$OUT/jtj_bench_blas.json" --benchmark_out_format=json 2>&1 | grep -v '^\*\*\*WARNING' | tee -a "$OUT/run.log"
fi

for kind in ${KINDS//,/ }; do
  for n in ${SIZES//,/ }; do
    log "lipattn $kind n = $n: float64 (plain), then mixed precision (--mixed-tol $MIXED_TOL)"
    "$BUILD_DIR/solve_bench" --kind "$kind" --n "$n" --tol 1e-8 --export "$OUT" | tee "$OUT/lipattn_plain_${kind}_${n}.json" | tee -a "$OUT/run.log"
    "$BUILD_DIR/solve_bench" --kind "$kind" --n "$n" --tol 1e-8 --mixed-tol "$MIXED_TOL" | tee "$OUT/lipattn_mixed_${kind}_${n}.json" | tee -a "$OUT/run.log"
    if [ "$BLAS" = 1 ]; then
      "$BUILD_DIR-blas/solve_bench" --kind "$kind" --n "$n" --tol 1e-8 --mixed-tol "$MIXED_TOL" | tee "$OUT/lipattn_blas_mixed_${kind}_${n}.json" | tee -a "$OUT/run.log"
    fi
    if [ "$PEER" = 1 ]; then
      log "PyTorch peer $kind n = $n (functorch + scipy eigsh, float64, 2 threads)"
      /usr/bin/python3 "$SRC/bench/peer_torch.py" "$OUT" --kinds "$kind" --sizes "$n" --tol 1e-8 --threads 2 | tee -a "$OUT/run.log"
    fi
  done
done
log "end $(date -Is)"
echo
/usr/bin/python3 "$SRC/bench/summarize.py" "$OUT"
