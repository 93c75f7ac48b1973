#!/usr/bin/env bash
# genlab's GEMM (the `gemm` crate) against PyTorch's (MKL's sgemm) on the GEMMs W1-W4 spend their
# time in (bench/gemm_shapes.txt), on one thread and on two: issue 22's "if genlab's kernels cannot
# match MKL's GEMM, say how far". The two sides run interleaved ROUNDS times on the same machine
# (crates/genlab-kernels/examples/gemm_rates.rs, bench/reference/gemm_rates.py); the table has
# each side's median GFLOP/s over rounds and their ratio (genlab / PyTorch; > 1: genlab faster),
# and the ratios' geometric mean over the layouts genlab runs (rows not named -strided).
#
# Usage: bash bench/gemm_vs_mkl.sh [SHAPES]   (default bench/gemm_shapes.txt; about 1 minute a round)
# Env: ROUNDS (default 3), OUT (keep the raw output here), and, to hold both sides to AVX2:
#   FEATURES="--no-default-features" ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 bash bench/gemm_vs_mkl.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shapes=${1:-bench/gemm_shapes.txt}
rounds=${ROUNDS:-3}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
# shellcheck disable=SC2086 # FEATURES is a list of cargo flags
cargo build -q --release -p genlab-kernels --example gemm_rates ${FEATURES:-}
bin=${CARGO_TARGET_DIR:-target}/release/examples/gemm_rates
for r in $(seq "$rounds"); do
  "$bin" "$shapes" > "$out/genlab-r$r.tsv"
  python3 bench/reference/gemm_rates.py "$shapes" > "$out/torch-r$r.tsv"
done
python3 - "$out" "$rounds" <<'PY'
import collections, statistics, sys
import torch
out, rounds = sys.argv[1], int(sys.argv[2])
def read(side):
    rates, order = collections.defaultdict(list), []
    for r in range(1, rounds + 1):
        for line in open(f"{out}/{side}-r{r}.tsv"):
            name, threads, rate = line.split("\t")
            key = (name, int(threads))
            if key not in rates:
                order.append(key)
            rates[key].append(float(rate))
    return rates, order
g, order = read("genlab")
t, _ = read("torch")
sys.path.insert(0, "bench")
from cpuinfo import describe
model = describe()
print(f"CPU: {model}; PyTorch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}; {rounds} rounds, medians")
print("| GEMM (m x n x k, layout: bench/gemm_shapes.txt) | threads | genlab GFLOP/s | PyTorch (MKL) GFLOP/s | ratio |")
print("|---|---:|---:|---:|---:|")
ratios = collections.defaultdict(list)
for key in order:
    a, b = statistics.median(g[key]), statistics.median(t[key])
    if not key[0].endswith("-strided"):
        ratios[key[1]].append(a / b)
    print(f"| {key[0]} | {key[1]} | {a:.1f} | {b:.1f} | {a / b:.2f} |")
for threads, r in sorted(ratios.items()):
    print(f"geometric mean of the ratios, {threads} thread(s), the layouts genlab runs (not -strided): {statistics.geometric_mean(r):.2f}")
PY
