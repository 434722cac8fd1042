#!/usr/bin/env python3
"""The scaling table of docs/performance.md from bench/scaling.sh's scaling.jsonl.

    python3 bench/scaling_table.py OUT/scaling.jsonl

Prints, against n (d = 64) and against d (n = 1024), the time to solution, the products, the time per
product and the peak RSS of every storage and precision; then the growth exponents fitted by least
squares in log-log (time per product and time to solution, over the points given), beside the cost
model's: a JᵀJ product costs 16nd² + 16n²d flops (docs/theory.md, cost model), whose local exponent
in n is (nd² + 2n²d)/(nd² + n²d) and in d is (2nd² + n²d)/(nd² + n²d) between the two ends.
"""
import json
import math
import sys


def label(p):
    mixed = p["solve"].get("mixed_tol", 0) > 0
    return p["storage"], "mixed" if mixed else p["dtype"]


def model_flops(n, d):
    return 16 * n * d * d + 16 * n * n * d


def slope(xs, ys):
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sxx if sxx > 0 else float("nan")


def table(points, axis):
    print(f"| {axis} | storage | precision | solve s | products f64 + f32 | s per product | σ | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for p in sorted(points, key=lambda p: (p[axis], label(p))):
        s = p["solve"]
        f32 = s["matvecs"] if p["dtype"] == "f32" else s.get("f32_matvecs", 0)
        f64 = s["matvecs"] - f32
        print(f"| {p[axis]:,} | {p['storage']} | {label(p)[1]} | {s['seconds']:.3g} | {f64} + {f32} | "
              f"{p['product_seconds']:.3g} | {s['lipschitz']:.12g} | {p['peak_rss_mib']:.0f} |")


def exponents(points, axis, fixed):
    print(f"\n| growth in {axis} | storage | precision | points | per product (fitted) | solve (fitted) | "
          f"cost model |")
    print("|---|---|---|---|---|---|---|")
    groups = {}
    for p in points:
        groups.setdefault(label(p), []).append(p)
    for key in sorted(groups):
        ps = sorted(groups[key], key=lambda p: p[axis])
        ps = [p for p in ps if p[axis] >= (1024 if axis == "n" else 64)]
        if len(ps) < 2:
            continue
        xs = [p[axis] for p in ps]
        flops = [model_flops(x, fixed) if axis == "n" else model_flops(fixed, x) for x in xs]
        print(f"| | {key[0]} | {key[1]} | {xs[0]:,}–{xs[-1]:,} | "
              f"{slope(xs, [p['product_seconds'] for p in ps]):.2f} | "
              f"{slope(xs, [p['solve']['seconds'] for p in ps]):.2f} | {slope(xs, flops):.2f} |")


def main():
    points = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    for p in points:
        p["product_seconds"] = p.get("product_seconds", p.get("seconds_per_product", float("nan")))
    by_n = [p for p in points if p["d"] == 64]
    by_d = [p for p in points if p["n"] == 1024]
    print("### Against n (d = 64, one head)\n")
    table(by_n, "n")
    exponents(by_n, "n", 64)
    print("\n### Against d (n = 1024, one head, k = d)\n")
    table(by_d, "d")
    exponents(by_d, "d", 1024)


if __name__ == "__main__":
    main()
