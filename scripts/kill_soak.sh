#!/usr/bin/env bash
# Kills lose nothing, the soak (docs/experiments.md, "Kills lose nothing"):
#
#   nice -n 19 scripts/kill_soak.sh [OUT_DIR] [-- extra reproduce flags, e.g. --only mf-iid]
#
# 1. `lipattn reproduce --quick --seed 0` uninterrupted into OUT_DIR/reference (default out/kill-soak).
# 2. The same into OUT_DIR/alone, SIGKILLed KILLS times (default 20) at seeded pseudo-random moments
#    (uniform in [0, 2T/KILLS), T the uninterrupted time, so the kills fall across the whole run) and
#    rerun after each kill, then rerun to the end.
# 3. The same under `mpirun --oversubscribe -np 2` into OUT_DIR/mpi: even kills hit mpirun and both
#    ranks at once, odd ones a single rank (mpirun then stops the other).
# 4. Checks each folder against the reference: every results line a whole record, every job exactly
#    once, no job lost, no part or temporary file left, every number equal (bench/compare_reproduce.py,
#    rtol 1e-12), report.md identical but for the output folder's name, the sweep time and the notes.
# Prints one summary line per mode and exits 1 when any check fails. KILLS and SEED (of the kill
# moments) and LIPATTN (the binary, default build/lipattn: scripts/build.sh) come from the environment;
# step 3 needs mpirun.
set -euo pipefail
cd "$(dirname "$0")/.."
root=out/kill-soak
if [ $# -gt 0 ] && [ "$1" != "--" ]; then root=$1; shift; fi
[ "${1:-}" = "--" ] && shift
extra=("$@")
kills=${KILLS:-20}
RANDOM=${SEED:-1}
bin=${LIPATTN:-$PWD/build/lipattn}  # LIPATTN: another binary (e.g. a copy while build/ is rebuilt)
[ -x "$bin" ] || { echo "kill_soak: $bin is not built (scripts/build.sh)" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$root"
mkdir -p "$root"

# The pids of the processes whose environment holds $1 (and OMPI_COMM_WORLD_RANK=$2 when given).
marked() {
  local f pid
  for f in /proc/[0-9]*/environ; do
    pid=${f#/proc/}; pid=${pid%/environ}
    [ "$pid" = $$ ] && continue
    { tr '\0' '\n' < "$f"; } 2>/dev/null | grep -qx "$1" || continue  # gone, or not ours to read
    [ -n "${2:-}" ] && { { tr '\0' '\n' < "$f"; } 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" || continue; }
    echo "$pid"
  done
}

reproduce_cmd() {  # $1 folder, $2 alone|mpi
  local cmd=("$bin" reproduce --out "$1" --quick --seed 0 --no-progress "${extra[@]}")
  [ "$2" = mpi ] && cmd=(mpirun --oversubscribe -np 2 "${cmd[@]}")
  echo "${cmd[@]}"
}

start=$(date +%s.%N)
env LIPATTN_SOAK=reference $(reproduce_cmd "$root/reference" alone) > "$root/reference.log" 2>&1
T=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "kill_soak: the uninterrupted run took ${T} s ($(uptime | sed 's/.*load average/load average/'))"

soak() {  # $1 alone|mpi
  local mode=$1 dir=$root/$1 log=$root/$1.log marker="LIPATTN_SOAK=$1" landed=0 i delay pid victim
  for ((i = 0; i < kills; i++)); do
    delay=$(awk -v t="$T" -v k="$kills" -v r="$RANDOM" 'BEGIN { printf "%.3f", 2 * t / k * r / 32768 }')
    env "$marker" $(reproduce_cmd "$dir" "$mode") >> "$log" 2>&1 &
    pid=$!
    sleep "$delay"
    if kill -0 "$pid" 2>/dev/null; then
      landed=$((landed + 1))
      if [ "$mode" = mpi ] && [ $((i % 2)) = 1 ]; then
        victim=$(( (i / 2) % 2 ))
        kill -9 $(marked "$marker" "$victim") 2>/dev/null || true
      else
        kill -9 $(marked "$marker") 2>/dev/null || true
      fi
      echo "kill_soak: $mode: kill $((i + 1)) at ${delay} s" >> "$log"
    fi
    wait "$pid" 2>/dev/null || true
    for _ in $(seq 600); do [ -z "$(marked "$marker")" ] && break; sleep 0.1; done
    [ -z "$(marked "$marker")" ] || { kill -9 $(marked "$marker") 2>/dev/null || true; echo "kill_soak: $mode: processes outlived mpirun" >&2; }
  done
  env "$marker" $(reproduce_cmd "$dir" "$mode") >> "$log" 2>&1
  echo "$landed"
}

check() {  # $1 mode, $2 kills that landed
  python3 - "$root/reference" "$root/$1" "$1" "$2" "$kills" <<'PY'
import json, pathlib, re, sys
ref, out, mode, landed, kills = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
problems, jobs, duplicates, lost, torn = [], 0, 0, 0, 0
for path in sorted((ref / "results").glob("*.jsonl")):
    want = {json.dumps(json.loads(l)["job"], sort_keys=True) for l in path.read_text().splitlines() if l.strip()}
    text = (out / "results" / path.name).read_text() if (out / "results" / path.name).exists() else ""
    if text and not text.endswith("\n"):
        torn += 1
    seen = {}
    for line in text.splitlines():
        try:
            key = json.dumps(json.loads(line)["job"], sort_keys=True)
        except (ValueError, KeyError):
            torn += 1
            continue
        seen[key] = seen.get(key, 0) + 1
    duplicates += sum(c - 1 for c in seen.values())
    lost += len(want - set(seen))
    jobs += len(seen)
left = [p.name for p in out.rglob("*") if ".part" in p.name or p.suffix == ".tmp"]
def numbers(d):
    text = (d / "report.md").read_text().replace(str(d), "OUT")
    return [l for l in text.splitlines() if l and not l.startswith(("The sweeps of this run took", "Note: "))]
same_report = numbers(ref) == numbers(out)
print(f"kill_soak: {mode}: {kills} kills ({landed} before the end), {kills + 1} reruns, {jobs} jobs, "
      f"{duplicates} duplicates, {lost} lost, {torn} torn lines, {len(left)} part/tmp files left, "
      f"report identical: {'yes' if same_report else 'no'}")
sys.exit(0 if duplicates == lost == torn == len(left) == 0 and same_report else 1)
PY
  python3 bench/compare_reproduce.py "$root/reference" "$root/$1" --rtol 1e-12 | tail -n 3
}

status=0
landed=$(soak alone); check alone "$landed" || status=1
if command -v mpirun > /dev/null; then
  landed=$(soak mpi); check mpi "$landed" || status=1
else
  echo "kill_soak: mpirun is not installed (scripts/setup.sh installs openmpi-bin): no MPI soak" >&2
  status=1
fi
exit $status
