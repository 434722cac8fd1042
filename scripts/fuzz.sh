#!/usr/bin/env bash
# Builds and runs one libFuzzer target of tests/fuzz (docs/fuzzing.md).
#   scripts/fuzz.sh TARGET [SECONDS] [libFuzzer flags...]   fuzz for SECONDS (default 60), niced
#   scripts/fuzz.sh merge TARGET                            minimise the work corpus into tests/fuzz/corpus/TARGET
#   scripts/fuzz.sh build [TARGET...]                       only build (all targets by default)
# The fuzzers live in build-fuzz/ (clang, -DLIPATTN_FUZZ=ON: -fsanitize=fuzzer,address,undefined).
# A run starts from tests/fuzz/corpus/TARGET and tests/fuzz/regressions/TARGET, grows its own work corpus
# in build-fuzz/work/TARGET (the committed corpus changes only through `merge`), writes crash inputs to
# build-fuzz/artifacts/TARGET/ and its log to build-fuzz/logs/TARGET.log. FUZZ_NO_BUILD=1 skips the build;
# FUZZ_NICE=N runs the fuzzer at niceness N (default 19).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${LIPATTN_FUZZ_BUILD:-$root/build-fuzz}
targets=(safetensors npy config_json shard_index llama2c_model layer_file llama2c_tokenizer gpt2_tokenizer
         wordpiece_tokenizer sentencepiece_bpe sweep_spec)

usage() { sed -n 2,9p "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
known() { local t; for t in "${targets[@]}"; do [ "$t" = "$1" ] && return 0; done
          echo "fuzz.sh: unknown target '$1' (known: ${targets[*]})" >&2; exit 2; }

configure() {
  if [ ! -f "$build/CMakeCache.txt" ]; then
    CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Sanitize -DLIPATTN_FUZZ=ON \
      -DBUILD_TESTING=OFF -DLIPATTN_PYTHON=OFF -DPYTHON_EXECUTABLE=/usr/bin/python3 >/dev/null
  fi
}
build_targets() {
  [ -n "${FUZZ_NO_BUILD:-}" ] && return 0  # FUZZ_NO_BUILD=1: use the binaries as they are
  configure
  local names=() t
  for t in "$@"; do names+=("fuzz_$t"); done
  cmake --build "$build" -j"${JOBS:-2}" --target "${names[@]}"
}

# The longest input a target tries: files of these formats are small headers plus data.
max_len() {
  case "$1" in
    sweep_spec|config_json|shard_index) echo 4096 ;;
    gpt2_tokenizer|wordpiece_tokenizer|sentencepiece_bpe|llama2c_tokenizer) echo 8192 ;;
    *) echo 16384 ;;
  esac
}

[ $# -ge 1 ] || usage
case "$1" in
  build)
    shift
    if [ $# -eq 0 ]; then set -- "${targets[@]}"; fi
    for t in "$@"; do known "$t"; done
    build_targets "$@"
    ;;
  merge)
    [ $# -eq 2 ] || usage
    t=$2; known "$t"; build_targets "$t"
    corpus=$root/tests/fuzz/corpus/$t
    fresh=$(mktemp -d "$build/merge-$t.XXXXXX")
    sources=("$corpus")
    [ -d "$build/work/$t" ] && sources+=("$build/work/$t")
    nice -n 19 "$build/fuzz_$t" -merge=1 -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
      "$fresh" "${sources[@]}"
    rm -rf "$corpus" && mv "$fresh" "$corpus" && chmod 755 "$corpus"
    echo "fuzz.sh: $corpus now holds $(ls "$corpus" | wc -l) inputs ($(du -sb "$corpus" | cut -f1) bytes)"
    ;;
  -h|--help) usage ;;
  *)
    t=$1; known "$t"; seconds=${2:-60}; shift; [ $# -gt 0 ] && shift
    build_targets "$t"
    mkdir -p "$build/work/$t" "$build/artifacts/$t" "$build/logs"
    seeds=("$root/tests/fuzz/corpus/$t")
    [ -d "$root/tests/fuzz/regressions/$t" ] && seeds+=("$root/tests/fuzz/regressions/$t")
    dict=()
    [ -f "$root/tests/fuzz/dict/$t.dict" ] && dict=(-dict="$root/tests/fuzz/dict/$t.dict")
    cmd=(nice -n "${FUZZ_NICE:-19}" "$build/fuzz_$t" "$build/work/$t" "${seeds[@]}" "${dict[@]}" -max_len="$(max_len "$t")"
         -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -detect_leaks=1 -max_total_time="$seconds"
         -print_final_stats=1 -artifact_prefix="$build/artifacts/$t/" "$@")
    echo "fuzz.sh: ${cmd[*]}" | tee "$build/logs/$t.log" >&2
    # ASan's allocator limit makes a huge allocation a report (not a silent success of overcommit).
    set +e
    ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=0:detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
      "${cmd[@]}" >>"$build/logs/$t.log" 2>&1
    status=$?
    set -e
    grep -E '^(#[0-9]+ +DONE|==[0-9]+==|SUMMARY|Done [0-9]+ runs)' "$build/logs/$t.log" >&2
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$build/logs/$t.log" >&2 || true
    exit "$status"
    ;;
esac
