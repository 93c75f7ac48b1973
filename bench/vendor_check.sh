#!/usr/bin/env bash
# Everything issue 22 asks of a new machine (an Intel one above all), in one unattended run, so a
# session that gets one spends its time reading results, not typing commands:
#   1. the CPU (lscpu) and whether subnormal floats are slow on it (NumPy, 1M values: x 0.9,
#      / 3e-3, sqrt; Zen 4 pays nothing on the multiply and 2x on the other two);
#   2. builds: this checkout as shipped, with flush-to-zero (a wrapper adding --flush-denormals),
#      and AVX2-only (`--no-default-features --features mimalloc`); with OLD=<commit>, that
#      commit too (built in a git worktree against this checkout's target folder, so only
#      genlab's own crates and what changed since are compiled);
#   3. bench/cpu_speed.sh, PyTorch against this build and flush-to-zero (and OLD) interleaved;
#   4. the same held to AVX2 on both sides (PyTorch's, oneDNN's and MKL's switches);
#   5. genlab's GEMM against MKL's on the workloads' GEMMs (bench/gemm_vs_mkl.sh), 1 and 2 threads;
#   6. a call-graph profile of each workload, summarised by bench/perf_owners.py --threads
#      (skipped when perf is missing or not permitted);
#   7. the dense layers' rules tuned on AMD (`runs_parallel`/PARALLEL_OPS and
#      `transposes_weights` in genlab-kernels' linear.rs) against the clock on this CPU
#      (examples/linear_threads.rs, run three times: its timings move from run to run);
#   8. late in a long training (bench/long_training.sh: README's VAE, 50 epochs, OLD and this
#      build against PyTorch), where Adam's moments stuck in the subnormal range cost CPUs that
#      handle subnormals slowly; this build flushes them (BENCHMARKS.md, issue 22).
# Results go to OUT (default runs/vendor-check-<date>): speed.md, speed-avx2.md, profile-*.txt,
# gemm.md, thresholds.md, long.md, lscpu.txt, subnormal.txt, and the JSON behind them. About 60 minutes on 2 cores from a warm
# target folder. BENCHMARKS.md's per-vendor table is where the ratios go.
#
# Usage: bash bench/vendor_check.sh [OUT]
# Env: ROUNDS (default 3), OLD (a commit to compare, e.g. f400f28, the last Intel reading),
#      WORKLOADS (default "mlp-vae conv-vae dcgan fsrcnn").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
export CARGO_TARGET_DIR=$target
out=${1:-runs/vendor-check-$(date +%Y%m%d-%H%M%S)}
rounds=${ROUNDS:-3}
export WORKLOADS=${WORKLOADS:-"mlp-vae conv-vae dcgan fsrcnn"}
if [ -e "$out" ]; then
  echo "vendor_check: $out exists; name a new folder" >&2
  exit 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$out/log.txt"; }

log "1. CPU and subnormals"
lscpu > "$out/lscpu.txt"
grep -E 'Model name|Vendor ID|CPU family|Model:|L1d|L2|L3|Flags' "$out/lscpu.txt" | cut -c1-200 | tee -a "$out/log.txt"
python3 - > "$out/subnormal.txt" <<'PY'
import timeit
import numpy as np
y = np.full(1_000_000, 3e-3, dtype=np.float32)
for name, v in (("normal (1e-3)", 1e-3), ("subnormal (1e-40)", 1e-40)):
    x = np.full(1_000_000, v, dtype=np.float32)
    o = np.empty_like(x)
    best = lambda f: min(timeit.repeat(f, number=1, repeat=20)) * 1e3
    mul = best(lambda: np.multiply(x, np.float32(0.9), out=o))
    div = best(lambda: np.divide(x, y, out=o))
    sqrt = best(lambda: np.sqrt(x, out=o))
    print(f"{name}: x * 0.9 {mul:.3f} ms, x / 3e-3 {div:.3f} ms, sqrt(x) {sqrt:.3f} ms")
PY
cat "$out/subnormal.txt" | tee -a "$out/log.txt"

log "2. builds"
if [ -n "${OLD:-}" ]; then
  tree="$out/old-tree"
  git worktree add -q --detach "$tree" "$OLD"
  (cd "$tree" && cargo build --release -q -p genlab-cli)
  cp "$target/release/genlab" "$out/genlab-old"
  git worktree remove --force "$tree"
fi
cargo build --release -q -p genlab-cli --no-default-features --features mimalloc
cp "$target/release/genlab" "$out/genlab-avx2"
cargo build --release -q -p genlab-cli
cp "$target/release/genlab" "$out/genlab"
printf '#!/bin/sh\nexec %s --flush-denormals "$@"\n' "$out/genlab" > "$out/genlab-ftz"
chmod +x "$out/genlab-ftz"
bins=("$out/genlab" "$out/genlab-ftz")
[ -n "${OLD:-}" ] && bins=("$out/genlab-old" "${bins[@]}")

log "3. speed: PyTorch, ${bins[*]##*/}"
OUT="$out/speed-json" ROUNDS=$rounds bash bench/cpu_speed.sh "${bins[@]}" | tee "$out/speed.md"

log "4. speed held to AVX2"
ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
  OUT="$out/speed-avx2-json" ROUNDS=$rounds bash bench/cpu_speed.sh "$out/genlab-avx2" |
  tee "$out/speed-avx2.md"

log "5. GEMM: genlab's against MKL's"
OUT="$out/gemm-tsv" ROUNDS=$rounds bash bench/gemm_vs_mkl.sh | tee "$out/gemm.md"

log "6. profiles"
if command -v perf >/dev/null && perf record -q -o "$out/probe.data" true 2>/dev/null; then
  rm -f "$out/probe.data"
  for w in $WORKLOADS; do
    perf record -q -F 299 --call-graph dwarf,16384 -o "$out/$w.data" \
      "$out/genlab" bench -w "$w" --windows 2 > /dev/null 2>&1
    perf script -i "$out/$w.data" 2>/dev/null | python3 bench/perf_owners.py --threads > "$out/profile-$w.txt"
    rm -f "$out/$w.data"
    head -12 "$out/profile-$w.txt" | tee -a "$out/log.txt"
  done
else
  log "perf missing or not permitted (kernel.perf_event_paranoid): no profiles"
fi

log "7. the dense layers' threading and transposition rules"
cargo build --release -q -p genlab-kernels --example linear_threads
for i in 1 2 3; do
  echo "### run $i"
  "$target/release/examples/linear_threads"
  echo
done > "$out/thresholds.md"

log "8. late in a long training"
long_bins=("$out/genlab")
[ -n "${OLD:-}" ] && long_bins=("$out/genlab-old" "$out/genlab")
OUT="$out/long-runs" ROUNDS=$rounds bash bench/long_training.sh "${long_bins[@]}" | tee "$out/long.md"
log "done: $out"
