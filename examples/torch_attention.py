"""Measures a torch.nn.MultiheadAttention's local Lipschitz constant with lipattn, against n.

PYTHONPATH=build/python python3 examples/torch_attention.py [--out L_vs_n.png]
Builds a float64 MultiheadAttention (d = 64, 4 heads, PyTorch's initialisation), draws a batch of
inputs X ~ N(0, 1) of n tokens, measures ‖Df(X)‖₂ at each with lipattn and prints the mean and the
largest; plots L against n when matplotlib is installed (Debian python3-matplotlib).
"""
import argparse

import torch

import lipattn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--n", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128])
    parser.add_argument("--out", default="L_vs_n.png")
    args = parser.parse_args()

    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(args.d, args.heads, batch_first=True).double().eval()
    weights = lipattn.torch_weights(mha.state_dict())
    print(f"{'n':>5} {'mean L':>12} {'max L':>12} {'products':>9}")
    means = []
    for n in args.n:
        batch = torch.randn(args.batch, n, args.d, dtype=torch.float64)
        results = [lipattn.measure(weights, x, heads=args.heads, causal=False) for x in batch]
        L = [r.lipschitz for r in results]
        means.append(sum(L) / len(L))
        print(f"{n:>5} {means[-1]:>12.6g} {max(L):>12.6g} {sum(r.matvecs for r in results):>9}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    plt.loglog(args.n, means, "o-")
    plt.xlabel("n (tokens)")
    plt.ylabel("mean local Lipschitz constant")
    plt.title(f"torch.nn.MultiheadAttention, d = {args.d}, {args.heads} heads")
    plt.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
