#!/usr/bin/python3
"""The PyTorch peer of bench/whole_model_bench.cpp (docs/performance.md, "Whole model").

The same random GPT-2 (model.safetensors as whole_model_bench --export writes it, float64) as a plain
torch module from the embedding output to ln_f: per layer x + attn(ln_1(x)), then x + mlp(ln_2(x)),
with causal attention, gelu_new and W_O; J^T J products with functorch (the faster of jvp+vjp and
vjp-of-vjp, as bench/peer_torch.py); sigma_max by scipy eigsh(LinearOperator, k=1, which='LA', tol).
Prints one JSON object.

Usage: peer_whole_model.py DIR [--tol 1e-8] [--threads 2] [--products 3]
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import scipy
import scipy.sparse.linalg as sla
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_torch import make_products, read_safetensors, time_product  # noqa: E402


class GPT2Stack(torch.nn.Module):
    """GPT-2's blocks and ln_f, from the embedding output to the last hidden state."""

    def __init__(self, t, layers, heads, eps):
        super().__init__()
        self.t, self.layers, self.heads, self.eps = t, layers, heads, eps

    def norm(self, x, p):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], self.t[p + ".weight"], self.t[p + ".bias"], self.eps)

    def linear(self, x, p):
        return x @ self.t[p + ".weight"].T + self.t[p + ".bias"]

    def attn(self, x, p):
        n, _ = x.shape
        h = self.heads

        def split(y):  # n x (h k) -> h x n x k
            return y.reshape(n, h, -1).transpose(0, 1)

        q, k, v = (split(self.linear(x, p + c)) for c in ("q", "k", "v"))
        s = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])
        mask = torch.ones(n, n, dtype=torch.bool).tril()
        s = torch.where(mask, s, torch.tensor(torch.finfo(s.dtype).min, dtype=s.dtype))
        o = (torch.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(n, -1)
        return self.linear(o, p + "o")

    def forward(self, x):
        for layer in range(self.layers):
            p = f"h.{layer}."
            x = x + self.attn(self.norm(x, p + "ln_1"), p)
            hidden = torch.nn.functional.gelu(self.linear(self.norm(x, p + "ln_2"), p + "fc"), approximate="tanh")
            x = x + self.linear(hidden, p + "proj")
        return self.norm(x, "ln_f")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--products", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_load = time.perf_counter()
    tensors, meta = read_safetensors(os.path.join(args.dir, "model.safetensors"))
    X = torch.from_numpy(np.load(os.path.join(args.dir, "X.npy")).astype(np.float64))
    model = GPT2Stack(tensors, int(meta["layers"]), int(meta["heads"]), float(meta["eps"]))
    load_seconds = time.perf_counter() - t_load
    n, d = X.shape
    v = torch.from_numpy(np.random.default_rng(7).standard_normal((n, d)))
    v /= v.norm()
    products = make_products(model, X)
    a, b = (products[k](v) for k in ("jvp+vjp", "vjp-of-vjp"))
    agreement = float((a - b).norm() / a.norm())
    timed = {name: time_product(p, v, args.products) for name, p in products.items()}
    per_product = {name: t[0] for name, t in timed.items()}
    best = min(per_product, key=per_product.get)

    t0, c0 = time.perf_counter(), time.process_time()
    product = make_products(model, X)[best]
    count = [0]

    def matvec(x):
        count[0] += 1
        return product(torch.from_numpy(np.ascontiguousarray(x).reshape(n, d))).detach().numpy().reshape(-1)

    op = sla.LinearOperator((n * d, n * d), matvec=matvec, dtype=np.float64)
    theta, vec = sla.eigsh(op, k=1, which="LA", tol=args.tol, v0=np.random.default_rng(0).standard_normal(n * d))
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    vec = vec[:, 0] / np.linalg.norm(vec[:, 0])
    residual = float(np.linalg.norm(matvec(vec) - theta[0] * vec) / theta[0])
    print(json.dumps({
        "n": n, "d": d, "layers": model.layers, "tol": args.tol, "load_seconds": load_seconds,
        "product_seconds": per_product, "product_method": best, "methods_relative_difference": agreement,
        "eigsh_seconds": seconds, "eigsh_cpu_seconds": cpu_seconds, "matvecs": count[0] - 1,
        "sigma": float(math.sqrt(theta[0])), "relative_residual": residual, "torch": torch.__version__,
        "scipy": scipy.__version__, "torch_threads": torch.get_num_threads(),
    }), flush=True)


if __name__ == "__main__":
    sys.exit(main())
