# Sourced by bench/streaming.sh and bench/scaling.sh: builds streaming_bench and defines `run`.
#   streaming_args FLAG LINES ARGS...
#                          parses a script's arguments: FLAG (its one option) sets FLAG_SET=1, -h prints
#                          the script's comment LINES (sed range), anything else is OUT (default
#                          BUILD_DIR/out)
#   streaming_setup NAME   needs SRC, BUILD_DIR and OUT; builds $BUILD_DIR/streaming_bench (logs in
#                          OUT/NAME-*.log) and empties RESULTS=OUT/NAME.jsonl
#   run ARGS...            one configuration (one process, so its peak RSS is its own), appended to
#                          RESULTS with the process's user+sys CPU seconds and the load before it
export OMP_NUM_THREADS=2

streaming_args() {
  local flag=$1 lines=$2
  shift 2
  FLAG_SET=0
  OUT=""
  while [ $# -gt 0 ]; do
    case "$1" in
      "$flag") FLAG_SET=1 ;;
      -h|--help) sed -n "${lines}p" "$0"; exit 0 ;;
      *) OUT=$1 ;;
    esac
    shift
  done
  OUT=${OUT:-$BUILD_DIR/out}
}

streaming_setup() {
  mkdir -p "$OUT"
  cmake -S "$SRC" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DLIPATTN_BUILD_BENCH=ON \
    -DPYTHON_EXECUTABLE=/usr/bin/python3 > "$OUT/$1-cmake.log"
  cmake --build "$BUILD_DIR" --target streaming_bench -j2 > "$OUT/$1-build.log"
  BIN=$BUILD_DIR/streaming_bench
  RESULTS=$OUT/$1.jsonl
  grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /cpu: /' > "$OUT/$1-host.txt"
  : > "$RESULTS"
}

run() {
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f '%U %S' -o "$OUT/time.txt" "$BIN" "$@" > "$OUT/line.json"
  python3 - "$OUT/line.json" "$OUT/time.txt" "$load" >> "$RESULTS" <<'PY'
import json, sys
line = json.load(open(sys.argv[1]))
user, system = map(float, open(sys.argv[2]).read().split()[-2:])
line["cpu_seconds"] = user + system
line["load_before"] = float(sys.argv[3])
print(json.dumps(line))
PY
  tail -1 "$RESULTS"
}
