#!/usr/bin/python3
"""The PyTorch peer of bench/jtj_bench.cpp (docs/performance.md).

The same GPT-2-shaped layer (read from the layer_<kind>.safetensors and X_<kind>_<n>.npy that
solve_bench --export writes) as a float64 PyTorch module; J^T J v products with functorch; sigma_max by
scipy.sparse.linalg.eigsh(LinearOperator, k=1, which='LA', tol) on J^T J, as the issue asks.

Two faithful ways to build the product with torch 1.13's functorch are timed:
  jvp+vjp   functorch.jvp(f, (X,), (v,)) gives J v (it re-runs the forward with dual numbers every
            time: torch 1.13 has no linearize), then vjp_fn(J v) with vjp_fn = functorch.vjp(f, X)[1]
            built once;
  vjp-of-vjp  J v as the vjp of the (linear) map u -> vjp_fn(u), built once, so neither half re-runs
            the forward.
The faster at each n drives eigsh. Prints one JSON object per n on stdout.

Usage: peer_torch.py DIR [--kinds gpt2,biased] [--sizes 256,1024] [--tol 1e-8] [--threads 2]
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import scipy
import scipy.sparse.linalg as sla
import torch
import functorch


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    base = 8 + header_len
    meta = header.pop("__metadata__", {})
    dtypes = {"F64": "<f8", "F32": "<f4"}
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[base + begin:base + end], dtype=dtypes[info["dtype"]])
        tensors[name] = torch.from_numpy(array.reshape(info["shape"]).astype(np.float64))
    return tensors, meta


class GPT2Attention(torch.nn.Module):
    """Causal multi-head attention as GPT-2 computes it: scores / sqrt(k), masked softmax, W_O."""

    def __init__(self, t, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (torch.nn.Linear(*t[f"{p}.weight"].shape[::-1], dtype=torch.float64)
                                          for p in "qkvo")
        with torch.no_grad():
            for p in "qkvo":
                getattr(self, p).weight.copy_(t[f"{p}.weight"])
                getattr(self, p).bias.copy_(t[f"{p}.bias"])
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x):  # x: n x d
        n, d = x.shape
        h = self.heads
        k = self.q.weight.shape[0] // h

        def split(y):  # n x (h k) -> h x n x k
            return y.reshape(n, h, -1).transpose(0, 1)

        q, kk, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        s = torch.matmul(q, kk.transpose(1, 2)) / math.sqrt(k)
        mask = torch.ones(n, n, dtype=torch.bool).tril()
        s = torch.where(mask, s, torch.tensor(torch.finfo(s.dtype).min, dtype=s.dtype))
        p = torch.softmax(s, dim=-1)
        o = torch.matmul(p, v).transpose(0, 1).reshape(n, -1)
        return self.o(o)


def make_products(f, X):
    _, vjp_fn = functorch.vjp(f, X)

    def jtj_jvp_vjp(v):
        _, jv = functorch.jvp(f, (X,), (v,))
        return vjp_fn(jv)[0]

    # u -> J^T u is linear; its vjp at any u is v -> J v. Built once.
    u0 = torch.zeros_like(f(X))
    _, jvp_fn = functorch.vjp(lambda u: vjp_fn(u)[0], u0)

    def jtj_vjp_of_vjp(v):
        return vjp_fn(jvp_fn(v)[0])[0]

    return {"jvp+vjp": jtj_jvp_vjp, "vjp-of-vjp": jtj_vjp_of_vjp}


def time_product(product, v, reps):
    """Median wall seconds per product, and mean process CPU seconds (all threads) per product."""
    product(v)  # warm-up
    times = []
    c0 = time.process_time()
    for _ in range(reps):
        t0 = time.perf_counter()
        product(v)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), (time.process_time() - c0) / reps


def run(directory, kind, n, tol, heads):
    tensors, _ = read_safetensors(os.path.join(directory, f"layer_{kind}.safetensors"))
    X = torch.from_numpy(np.load(os.path.join(directory, f"X_{kind}_{n}.npy")).astype(np.float64))
    module = GPT2Attention(tensors, heads)
    d = X.shape[1]
    v = torch.from_numpy(np.random.default_rng(7).standard_normal((n, d)))
    v /= v.norm()
    reps = 10 if n <= 256 else 3
    products = make_products(module, X)
    # Both ways compute the same thing: check before timing.
    a, b = (products[k](v) for k in ("jvp+vjp", "vjp-of-vjp"))
    agreement = float((a - b).norm() / a.norm())
    timed = {name: time_product(p, v, reps) for name, p in products.items()}
    per_product = {name: t[0] for name, t in timed.items()}
    best = min(per_product, key=per_product.get)

    # eigsh end to end: linearisation (forward + graphs) included, as in lipattn's solver time.
    t0, c0 = time.perf_counter(), time.process_time()
    product = make_products(module, X)[best]
    count = [0]

    def matvec(x):
        count[0] += 1
        y = product(torch.from_numpy(np.ascontiguousarray(x).reshape(n, d)))
        return y.detach().numpy().reshape(-1)

    op = sla.LinearOperator((n * d, n * d), matvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(n * d)
    theta, vec = sla.eigsh(op, k=1, which="LA", tol=tol, v0=v0)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    vec = vec[:, 0] / np.linalg.norm(vec[:, 0])
    w = matvec(vec)
    residual = float(np.linalg.norm(w - theta[0] * vec) / theta[0])
    return {
        "kind": kind, "n": n, "d": d, "heads": heads, "dtype": "f64", "tol": tol,
        "product_seconds": per_product, "product_method": best, "methods_relative_difference": agreement,
        "product_cpu_seconds": timed[best][1],
        "eigsh_seconds": seconds, "eigsh_cpu_seconds": cpu_seconds, "matvecs": count[0] - 1, "sigma": float(math.sqrt(theta[0])),
        "relative_residual": residual, "torch": torch.__version__, "scipy": scipy.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--kinds", default="gpt2,biased")
    ap.add_argument("--sizes", default="256,1024")
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--heads", type=int, default=12)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for kind in args.kinds.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            result = run(args.dir, kind, n, args.tol, args.heads)
            print(json.dumps(result), flush=True)
            with open(os.path.join(args.dir, f"peer_{kind}_{n}.json"), "w") as f:
                json.dump(result, f)


if __name__ == "__main__":
    sys.exit(main())
