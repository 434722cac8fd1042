#!/usr/bin/env python3
"""The cost of calling lipattn from Python against the CLI (docs/performance.md, "Python overhead").

The same solve (one random layer, the same X, --method lanczos, float64) from `build/lipattn measure`
and from `lipattn.measure` in one Python process, interleaved in a seeded random order, `--repeats`
times each. Wall time of the whole call on both sides: the CLI's includes its process start and reading
the files; Python's reads the same files (weights and X given as paths), and a second variant hands it
the arrays instead (the dict as an in-memory layer file, X read in place). Prints medians, the overhead
in % and the load.

    PYTHONPATH=build/python python3 bench/python_overhead.py            # the target: overhead ≤ 5%
"""
import argparse
import json
import os
import random
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=str(ROOT / "build"))
    p.add_argument("--n", type=int, default=768)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args()
    sys.path.insert(0, str(pathlib.Path(a.build) / "python"))
    import lipattn

    rng = np.random.default_rng(0)
    weights = {f"{k}.weight": rng.normal(0, 1 / np.sqrt(a.d), (a.d, a.d)) for k in "qkvo"}
    X = rng.normal(size=(a.n, a.d))
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="lipattn-overhead-"))
    layer, inputs = tmp / "layer.safetensors", tmp / "x.npy"
    lipattn.save_weights(str(layer), weights)
    np.save(inputs, X)
    cli = [str(pathlib.Path(a.build) / "lipattn"), "measure", "--weights", str(layer), "--input", str(inputs),
           "--heads", str(a.heads), "--causal", "--method", "lanczos", "--json", "--quiet"]
    kwargs = dict(heads=a.heads, causal=True, method="lanczos")

    def timed(f):
        t0 = time.perf_counter()
        out = f()
        return time.perf_counter() - t0, out

    times = {"cli": [], "python (files)": [], "python (arrays)": []}
    r = None
    solve = {k: [] for k in times}  # the solve's own "seconds" field: the call's time outside it is the overhead
    sigma = {}
    def run_cli():
        t, run = timed(lambda: subprocess.run(cli, capture_output=True, text=True, check=True))
        out = json.loads(run.stdout)
        return t, out["lipschitz"], out["seconds"], None

    def run_python(*args):
        t, r = timed(lambda: lipattn.measure(*args, **kwargs))
        return t, r.lipschitz, r.seconds, r

    calls = {"cli": run_cli, "python (files)": lambda: run_python(str(layer), str(inputs)),
             "python (arrays)": lambda: run_python(weights, X)}
    order = random.Random(0)
    for _ in range(a.repeats):
        # A fresh order each repeat: what runs right after a CLI process (its exit, the page cache) or
        # after another solve in the same process differs, and a fixed order biased one side by ~10%.
        names = list(calls)
        order.shuffle(names)
        for name in names:
            t, sigma[name], seconds, out = calls[name]()
            times[name].append(t)
            solve[name].append(seconds)
            r = out or r
    assert len({round(s, 9) for s in sigma.values()}) == 1, sigma  # the same solve on every side
    base = statistics.median(times["cli"])
    print(f"n = {a.n}, d = {a.d}, heads = {a.heads}, lanczos, {r.matvecs} products, {a.repeats} repeats, interleaved")
    for name, ts in times.items():
        m = statistics.median(ts)
        extra = "" if name == "cli" else f"   overhead {100 * (m - base) / base:+.1f}%"
        outside = statistics.median(t - s for t, s in zip(ts, solve[name]))
        print(f"{name:16} median {m:.3f} s  (min {min(ts):.3f}, max {max(ts):.3f}; outside the solve "
              f"{1000 * outside:.0f} ms){extra}")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {cpu}; {os.cpu_count()} cores")
    if base < 0.5:
        print(f"note: the CLI's solve took {base:.2f} s < 0.5 s: raise --n for the target's setting")


if __name__ == "__main__":
    main()
