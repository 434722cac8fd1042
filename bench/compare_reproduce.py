#!/usr/bin/env python3
"""Compares two `lipattn reproduce` output folders: the numbers of fits.json and results/*.jsonl.

    python3 bench/compare_reproduce.py OLD_DIR NEW_DIR [--rtol 1e-10]

Records are matched by their job (the job object is the job's identity), fits by (experiment,
quantity). Every number must agree to rtol relative (|a - b| <= rtol * max(|a|, |b|)); strings,
booleans, nulls and the set of keys must be equal. Timings (a record's "seconds", "finished",
"threads", "rank", and a result's "solver_seconds" or "seconds", as a block measurement's solve
time) are skipped. The bound renamed in issue 13
(paper_data_dependent, now released_code_data_dependent) is compared under its new name.
Exit 0 when everything agrees, 1 otherwise (each difference printed).
"""
import argparse
import json
import math
import pathlib
import sys

SKIP_RECORD = {"finished", "threads", "rank"}  # and "seconds", skipped anywhere
SKIP_ANYWHERE = {"solver_seconds", "seconds"}
RENAMED = {"paper_data_dependent": "released_code_data_dependent"}


def renamed(value):
    if isinstance(value, dict):
        return {RENAMED.get(k, k): renamed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v) for v in value]
    return RENAMED.get(value, value) if isinstance(value, str) else value


def compare(a, b, rtol, where, out, stats):
    if isinstance(a, dict) and isinstance(b, dict):
        keys_a = set(a) - SKIP_ANYWHERE
        keys_b = set(b) - SKIP_ANYWHERE
        if keys_a != keys_b:
            out.append(f"{where}: keys differ: only old {sorted(keys_a - keys_b)}, only new {sorted(keys_b - keys_a)}")
        for k in sorted(keys_a & keys_b):
            compare(a[k], b[k], rtol, f"{where}.{k}", out, stats)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: lengths {len(a)} and {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            compare(x, y, rtol, f"{where}[{i}]", out, stats)
    elif isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str):
        if a != b:
            out.append(f"{where}: {a!r} and {b!r}")
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        stats["numbers"] += 1
        scale = max(abs(a), abs(b))
        rel = 0.0 if a == b else (abs(a - b) / scale if scale > 0 else math.inf)
        stats["max_rel"] = max(stats["max_rel"], rel)
        if rel > rtol:
            out.append(f"{where}: {a!r} and {b!r} (relative difference {rel:.3g})")
    else:
        out.append(f"{where}: {a!r} and {b!r} (types differ)")


def read_records(path):
    records = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = renamed(json.loads(line))
            records[json.dumps(record["job"], sort_keys=True)] = record
    return records


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=pathlib.Path)
    parser.add_argument("new", type=pathlib.Path)
    parser.add_argument("--rtol", type=float, default=1e-10)
    args = parser.parse_args()
    out, stats = [], {"numbers": 0, "max_rel": 0.0, "records": 0, "fits": 0}

    old_files = sorted(p.name for p in (args.old / "results").glob("*.jsonl"))
    new_files = sorted(p.name for p in (args.new / "results").glob("*.jsonl"))
    if old_files != new_files:
        out.append(f"results files differ: {old_files} and {new_files}")
    for name in sorted(set(old_files) & set(new_files)):
        old, new = read_records(args.old / "results" / name), read_records(args.new / "results" / name)
        if set(old) != set(new):
            out.append(f"{name}: the jobs differ ({len(set(old) - set(new))} only old, {len(set(new) - set(old))} only new)")
        for job in sorted(set(old) & set(new)):
            stats["records"] += 1
            a = {k: v for k, v in old[job].items() if k not in SKIP_RECORD}
            b = {k: v for k, v in new[job].items() if k not in SKIP_RECORD}
            compare(a, b, args.rtol, f"{name} n={old[job]['job'].get('n')}", out, stats)

    def fits(folder):
        return {(f["experiment"], f["quantity"]): f for f in json.loads((folder / "fits.json").read_text())}

    old_fits, new_fits = fits(args.old), fits(args.new)
    if set(old_fits) != set(new_fits):
        out.append(f"fits.json: the fits differ: {sorted(set(old_fits) ^ set(new_fits))}")
    for key in sorted(set(old_fits) & set(new_fits)):
        stats["fits"] += 1
        compare(old_fits[key], new_fits[key], args.rtol, f"fits.json {key}", out, stats)

    for line in out:
        print(line)
    print(f"{stats['records']} records in {len(new_files)} results files and {stats['fits']} fits compared: "
          f"{stats['numbers']} numbers, largest relative difference {stats['max_rel']:.3g} (rtol {args.rtol:g}); "
          f"{len(out)} differences")
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main())
