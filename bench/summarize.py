#!/usr/bin/python3
"""Turns the outputs of bench/run.sh (Google Benchmark JSON, lipattn_{plain,mixed}_<kind>_<n>.json,
peer_<kind>_<n>.json) into the Markdown tables of docs/performance.md, and checks the issue-18 bar
(10x the peer) and the sigma agreement (1e-10).

Usage: summarize.py OUT_DIR     (exit status 0 even when the bar is missed: it is a report)
"""
import glob
import json
import os
import re
import sys


def load_benchmarks(path):
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration":
            continue
        out[b["name"]] = b
    return out


def seconds(b):
    unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
    return b["real_time"] * unit, b["cpu_time"] * unit


def find(benchmarks, prefix, arg):
    pattern = re.compile(re.escape(prefix) + r"/" + str(arg) + r"(/|$)")
    for name, b in benchmarks.items():
        if pattern.match(name):
            return b
    return None


def gemm_rates(benchmarks, dtype):
    rates = {}
    for name, b in benchmarks.items():
        m = re.match(r"BM_Gemm<" + dtype + r">/(\d+)/(\d+)/(\d+)", name)
        if m:
            rates["×".join(m.groups())] = b["GFLOP/s"] / 1e9 if b["GFLOP/s"] > 1e6 else b["GFLOP/s"]
    return rates


def rate(b):
    r = b["GFLOP/s"]
    return r / 1e9 if r > 1e6 else r  # Google Benchmark stores rates per second in raw units


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    main_bm = load_benchmarks(os.path.join(out, "jtj_bench.json"))
    blas_bm = load_benchmarks(os.path.join(out, "jtj_bench_blas.json"))
    sizes = [64, 256, 1024, 2048]
    lines = []
    p = lines.append
    log = os.path.join(out, "run.log")
    if os.path.exists(log):  # the load average before each step: timings under load are not the machine's
        p("Run log (load averages 1/5/15 min):")
        p("```")
        lines.extend(l.rstrip() for l in open(log) if l.startswith("== "))
        p("```")
        p("")

    for dtype in ("f64", "f32"):
        g = gemm_rates(main_bm, dtype)
        if g:
            p(f"GEMM rate ({dtype}, Eigen, this build): " + ", ".join(f"{k}: {v:.1f} GFLOP/s" for k, v in g.items()))
    p("")
    p("| n | dtype | JᵀJ product ms | GFLOP | GFLOP/s | % of best GEMM | jvp ms | vjp ms | forward ms |")
    p("|---|---|---|---|---|---|---|---|---|")
    verdict = {}
    for n in sizes:
        for dtype in ("f64", "f32"):
            b = find(main_bm, f"BM_JtJ<{dtype}>", n)
            if b is None:
                continue
            best_gemm = max(gemm_rates(main_bm, dtype).values() or [float("nan")])
            wall, _ = seconds(b)
            halves = []
            for half in ("Jvp", "Vjp", "Forward"):
                h = find(main_bm, f"BM_{half}<{dtype}>", n)
                halves.append(f"{seconds(h)[0] * 1e3:.1f}" if h else "–")
            pct = 100 * rate(b) / best_gemm
            p(f"| {n} | {dtype} | {wall * 1e3:.1f} | {b['GFLOP']:.2f} | {rate(b):.1f} | {pct:.0f}% | "
              + " | ".join(halves) + " |")
            if dtype == "f64":
                verdict[n] = {"pct": pct, "product_s": wall}

    p("")
    p("PyTorch peer (float64, functorch products, scipy eigsh) against lipattn float64 (plain) and mixed precision")
    p("(--mixed-tol 1e-6: a float32 phase, then float64 from its vector; the certificate in float64), same layer,")
    p("same X, tol 1e-8.")
    p("Products: float64 (+ float32). Time: wall seconds of the solve including the forward pass (CPU seconds).")
    p("")
    p("| layer | n | peer s (CPU s) | peer products | plain s (CPU s) | plain products | mixed s (CPU s) |"
      " mixed products | plain speed-up | mixed speed-up | σ mixed | σ peer | rel. diff | mixed vs plain |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    agreement_ok, ratios = True, {}
    for path in sorted(glob.glob(os.path.join(out, "peer_*_*.json"))):
        peer = json.load(open(path))
        kind, n = peer["kind"], peer["n"]
        solves = {}
        for mode in ("plain", "mixed"):
            q = os.path.join(out, f"lipattn_{mode}_{kind}_{n}.json")
            solves[mode] = json.load(open(q)) if os.path.exists(q) else None
        plain, mixed = solves["plain"], solves["mixed"]
        if plain is None or mixed is None:
            continue
        rel = abs(mixed["sigma"] - peer["sigma"]) / peer["sigma"]
        rel_plain = abs(mixed["sigma"] - plain["sigma"]) / plain["sigma"]
        agreement_ok &= rel <= 1e-10 and rel_plain <= 1e-10
        sp_plain, sp_mixed = peer["eigsh_seconds"] / plain["seconds"], peer["eigsh_seconds"] / mixed["seconds"]
        ratios[(kind, n)] = sp_mixed
        f64_mixed = mixed["matvecs"] - mixed["f32_matvecs"]
        p(f"| {kind} | {n} | {peer['eigsh_seconds']:.2f} ({peer.get('eigsh_cpu_seconds', float('nan')):.2f}) | "
          f"{peer['matvecs']} | {plain['seconds']:.2f} ({plain['cpu_seconds']:.2f}) | {plain['matvecs']} | "
          f"{mixed['seconds']:.2f} ({mixed['cpu_seconds']:.2f}) | {f64_mixed} + {mixed['f32_matvecs']} ({mixed['mixed']}) | "
          f"{sp_plain:.1f}× | {sp_mixed:.1f}× | {mixed['sigma']:.15g} | {peer['sigma']:.15g} | {rel:.1e} | {rel_plain:.1e} |")
    p("")
    p(f"σ agreement (mixed against the peer and against plain, relative difference ≤ 1e-10 everywhere): "
      f"{'PASS' if agreement_ok else 'FAIL'}")
    if ratios:
        worst = min(ratios.values())
        p(f"Bar (issue 18.1: at least 10× the peer to tol 1e-8 on every layer and n): worst {worst:.1f}×: "
          f"{'MET' if worst >= 10 else 'NOT MET'}")
    p("")

    if blas_bm:
        p("")
        p("Plain Eigen (OpenMP) vs Eigen with EIGEN_USE_BLAS (OpenBLAS), float64 products:")
        p("")
        g_plain, g_blas = gemm_rates(main_bm, "f64"), gemm_rates(blas_bm, "f64")
        p("GEMM f64 plain: " + ", ".join(f"{k}: {v:.1f}" for k, v in g_plain.items())
          + " GFLOP/s; with OpenBLAS: " + ", ".join(f"{k}: {v:.1f}" for k, v in g_blas.items()) + " GFLOP/s")
        p("")
        p("| n | plain Eigen ms | Eigen + OpenBLAS ms | faster |")
        p("|---|---|---|---|")
        for n in sizes:
            a, b = find(main_bm, "BM_JtJ<f64>", n), find(blas_bm, "BM_JtJ<f64>", n)
            if a and b:
                ta, tb = seconds(a)[0], seconds(b)[0]
                p(f"| {n} | {ta * 1e3:.1f} | {tb * 1e3:.1f} | {'plain Eigen' if ta <= tb else 'OpenBLAS'} "
                  f"({max(ta, tb) / min(ta, tb):.2f}×) |")
        p("")
        p("| layer | n | mixed solve, plain Eigen s | mixed solve, Eigen + OpenBLAS s | faster |")
        p("|---|---|---|---|---|")
        for path in sorted(glob.glob(os.path.join(out, "lipattn_blas_mixed_*.json"))):
            b = json.load(open(path))
            q = os.path.join(out, f"lipattn_mixed_{b['kind']}_{b['n']}.json")
            if os.path.exists(q):
                a = json.load(open(q))
                ta, tb = a["seconds"], b["seconds"]
                p(f"| {b['kind']} | {b['n']} | {ta:.2f} | {tb:.2f} | {'plain Eigen' if ta <= tb else 'OpenBLAS'} "
                  f"({max(ta, tb) / min(ta, tb):.2f}×) |")

    text = "\n".join(lines)
    print(text)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
