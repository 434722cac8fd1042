#!/usr/bin/python3
"""Turns the outputs of bench/run.sh (Google Benchmark JSON, lanczos_*.json, peer_*.json) into the
Markdown tables of docs/performance.md, and checks the issue-2 bar and the sigma agreement.

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
    sizes = [64, 256, 1024]
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
    p("| n | dtype | JᵀJ product ms | GFLOP | GFLOP/s | % of best GEMM | jvp ms | vjp ms | forward ms |"
      " Lanczos matvecs | Lanczos s (CPU s) | tol |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|")
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
            lz_path = os.path.join(out, f"lanczos_{dtype}_{n}.json")
            lz = json.load(open(lz_path)) if os.path.exists(lz_path) else None
            lz_cols = (f"{lz['matvecs']} | {lz['seconds']:.2f} ({lz.get('cpu_seconds', float('nan')):.2f}) | {lz['tol']:g}"
                       if lz else "– | – | –")
            pct = 100 * rate(b) / best_gemm
            p(f"| {n} | {dtype} | {wall * 1e3:.1f} | {b['GFLOP']:.2f} | {rate(b):.1f} | {pct:.0f}% | "
              + " | ".join(halves) + f" | {lz_cols} |")
            if dtype == "f64":
                verdict[n] = {"pct": pct, "product_s": wall, "lanczos": lz}

    p("")
    p("PyTorch peer (float64, functorch products, scipy eigsh) vs lipattn float64, same layer, same X:")
    p("")
    p("| n | peer product ms (way) | lipattn product ms | product speed-up | peer matvecs | peer s (CPU s) |"
      " lipattn s (CPU s) | speed-up to tol | σ lipattn | σ peer | rel. diff |")
    p("|---|---|---|---|---|---|---|---|---|---|---|")
    agreement_ok = True
    for n in sizes:
        path = os.path.join(out, f"peer_{n}.json")
        if not os.path.exists(path) or n not in verdict or verdict[n]["lanczos"] is None:
            continue
        peer = json.load(open(path))
        lz = verdict[n]["lanczos"]
        peer_product = peer["product_seconds"][peer["product_method"]]
        rel = abs(lz["sigma"] - peer["sigma"]) / peer["sigma"]
        agreement_ok &= rel <= 1e-8
        speedup = peer["eigsh_seconds"] / lz["seconds"]
        verdict[n]["speedup"] = speedup
        p(f"| {n} | {peer_product * 1e3:.0f} ({peer['product_method']}) | {verdict[n]['product_s'] * 1e3:.1f} | "
          f"{peer_product / verdict[n]['product_s']:.1f}× | {peer['matvecs']} | "
          f"{peer['eigsh_seconds']:.2f} ({peer.get('eigsh_cpu_seconds', float('nan')):.2f}) | "
          f"{lz['seconds']:.2f} ({lz.get('cpu_seconds', float('nan')):.2f}) | {speedup:.1f}× | "
          f"{lz['sigma']:.15g} | {peer['sigma']:.15g} | {rel:.1e} |")
    p("")
    p(f"σ agreement (relative difference ≤ 1e-8 at every n): {'PASS' if agreement_ok else 'FAIL'}")

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
    if 256 in verdict:
        v = verdict[256]
        ok_rate = v["pct"] >= 50
        ok_speed = v.get("speedup", 0) >= 5
        p(f"Bar at n = 256 (float64): products at {v['pct']:.0f}% of the best GEMM rate (need ≥ 50%): "
          f"{'MET' if ok_rate else 'NOT MET'}; to tol 1e-8 {v.get('speedup', float('nan')):.1f}× faster than "
          f"the peer (need ≥ 5×): {'MET' if ok_speed else 'NOT MET'}")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
