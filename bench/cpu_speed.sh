#!/usr/bin/env bash
# Issue 5's four CPU training workloads, genlab vs PyTorch, in one run on the same (idle) machine:
#   W1 mlp-vae, W2 conv-vae (batch 128, mnist-10k), W3 dcgan (batch 64, one D + one G step),
#   W4 fsrcnn (x2, LR 32x32, batch 32). images/s, median of 7 two-second windows, 2 threads.
# Each genlab binary and PyTorch run ROUNDS times per workload, interleaved (A B P A B P ...), so
# drift of the machine's speed hits all of them alike; the table shows the median over rounds, the
# CPU it ran on, and with two binaries the ratio B / A of each round.
#
# Usage: bash bench/cpu_speed.sh [BIN_A [BIN_B]]   (default: target/release/genlab only)
#   e.g. compare the system allocator with mimalloc:
#   cargo build --release -p genlab-cli --no-default-features && cp target/release/genlab /tmp/genlab-sysalloc
#   cargo build --release -p genlab-cli && bash bench/cpu_speed.sh /tmp/genlab-sysalloc target/release/genlab
# Env: ROUNDS (default 3), WORKLOADS (default "mlp-vae conv-vae dcgan fsrcnn"), OUT (keep the JSON here).
# An AVX2-only machine, measured on one with AVX-512 (BENCHMARKS.md, "Without AVX-512"): genlab
# built with `--no-default-features --features mimalloc`, PyTorch held to AVX2 by
#   ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 bash bench/cpu_speed.sh BIN
set -euo pipefail
cd "$(dirname "$0")/.."
bins=("${@:-target/release/genlab}")
rounds=${ROUNDS:-3}
workloads=${WORKLOADS:-"mlp-vae conv-vae dcgan fsrcnn"}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"

torch() { # workload json
  case $1 in
    mlp-vae) python3 bench/reference/vae.py --speed --model mlp --dataset mnist-10k --threads 2 --json "$2" ;;
    conv-vae) python3 bench/reference/vae.py --speed --model conv --dataset mnist-10k --threads 2 --json "$2" ;;
    dcgan) python3 bench/reference/dcgan.py --speed --threads 2 --json "$2" ;;
    fsrcnn) python3 bench/reference/fsrcnn.py --train-speed --threads 2 --json "$2" ;;
  esac >/dev/null
}

for w in $workloads; do
  for r in $(seq "$rounds"); do
    for i in "${!bins[@]}"; do
      "${bins[$i]}" bench -w "$w" --json "$out/$w-g$i-r$r.json" >/dev/null
    done
    torch "$w" "$out/$w-torch-r$r.json"
  done
done

torch_isa=$(python3 -c "import torch; print(torch.backends.cpu.get_cpu_capability())" 2>/dev/null || echo "?")

python3 - "$out" "$rounds" "$torch_isa" "${#bins[@]}" "$workloads" "${bins[@]}" <<'PY'
import json, statistics, sys
out, rounds, torch_isa, nbins, workloads, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5].split(), sys.argv[6:]
def g(w, i, r):
    d = json.load(open(f"{out}/{w}-g{i}-r{r}.json"))
    return d["workloads"][0]["median_images_per_s"], d["peak_rss_mib"]
def t(w, r):
    d = json.load(open(f"{out}/{w}-torch-r{r}.json"))
    v = d.get("median_images_per_s", d.get("median_patches_per_s"))
    return v, d.get("peak_rss_mib", float("nan"))
cpu = json.load(open(f"{out}/{workloads[0]}-g0-r1.json")).get("cpu", {})
fm = cpu.get("family_model")
fm = f" family {fm[0]} model {fm[1]}" if fm else ""
print(f"CPU: {cpu.get('model', '?')} ({cpu.get('vendor', '?')}{fm}; {' '.join(cpu.get('simd', []))})")
kernels = [json.load(open(f"{out}/{workloads[0]}-g{i}-r1.json")).get("cpu", {}).get("kernels", "?") for i in range(nbins)]
print("Vector instructions: PyTorch " + torch_isa + "; " + ", ".join(f"{b} {k}" for b, k in zip(bins, kernels)))
head = "| workload | PyTorch img/s (RSS MiB) | " + " | ".join(f"{b} img/s (RSS MiB) | ratio" for b in bins)
# With two builds, the second against the first in each round: the spread is the machine's noise.
per_round = nbins == 2
head += " | B / A per round |" if per_round else " |"
print(head)
print("|---" * (2 + 2 * nbins + per_round) + "|")
for w in workloads:
    tv = [t(w, r) for r in range(1, rounds + 1)]
    tm = statistics.median(v for v, _ in tv)
    row = f"| {w} | {tm:,.0f} ({max(m for _, m in tv):.0f}) |"
    for i in range(nbins):
        gv = [g(w, i, r) for r in range(1, rounds + 1)]
        gm = statistics.median(v for v, _ in gv)
        row += f" {gm:,.0f} ({max(m for _, m in gv):.0f}) | {gm / tm:.2f} |"
    if per_round:
        ratios = [g(w, 1, r)[0] / g(w, 0, r)[0] for r in range(1, rounds + 1)]
        row += " " + ", ".join(f"{x:.2f}" for x in ratios) + " |"
    print(row)
print(f"(median over {rounds} interleaved rounds; raw JSON in {out})")
PY
