#!/usr/bin/env python3
"""PyTorch's GEMM (torch.mm, MKL's sgemm on x86 wheels) on the shapes of a shapes file, on one
thread and on two: the reference side of bench/gemm_vs_mkl.sh, timed as
crates/genlab-kernels/examples/gemm_rates.rs times genlab's (median GFLOP/s over 15 windows of at
least 20 ms, the first 3 not counted; the output preallocated, `out=`).

    python3 bench/reference/gemm_rates.py bench/gemm_shapes.txt

Prints one tab-separated line per shape and thread count: name, threads, GFLOP/s. Each call
pays PyTorch's dispatch (a few µs), as training does; on the smallest shapes that is part of
the figure.
"""
import statistics
import sys
import time

import torch


def parse(path):
    shapes = []
    for i, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = line.split()
        if len(f) != 5 or len(f[4]) != 2 or set(f[4]) - {"n", "t"}:
            sys.exit(f"{path}: line {i}: expected `name m n k nn|nt|tn|tt`, got `{line}`")
        shapes.append((f[0], int(f[1]), int(f[2]), int(f[3]), f[4]))
    return shapes


def fill(rows, cols, seed):
    # The values gemm_rates.rs uses: in [-1, 1), no zeros or subnormals.
    i = torch.arange(rows * cols, dtype=torch.int64)
    return (((i * 7919 + seed * 104729) % 2003).float() / 1001.5 - 1.0).reshape(rows, cols)


def median_gflops(flop, f):
    rates = []
    for w in range(18):
        t, calls = time.perf_counter(), 0
        while calls == 0 or time.perf_counter() - t < 0.02:
            f()
            calls += 1
        if w >= 3:
            rates.append(flop * calls / (time.perf_counter() - t) / 1e9)
    return statistics.median(rates)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "bench/gemm_shapes.txt"
    for name, m, n, k, layout in parse(path):
        # Stored as the layout says, then viewed as [m, k] and [k, n] (MKL reads the
        # transposed ones through its trans flags).
        a = fill(k, m, 1).t() if layout[0] == "t" else fill(m, k, 1)
        b = fill(n, k, 2).t() if layout[1] == "t" else fill(k, n, 2)
        out = torch.empty(m, n)
        flop = 2.0 * m * n * k
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.no_grad():
                rate = median_gflops(flop, lambda: torch.mm(a, b, out=out))
            print(f"{name}\t{threads}\t{rate:.2f}", flush=True)


if __name__ == "__main__":
    main()
