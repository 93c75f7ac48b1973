#!/usr/bin/env bash
# Training speed late in a long training, where `genlab bench` (a fresh initialisation, a few
# seconds) cannot look: README's MLP VAE (mnist-10k, batch 128, Adam 1e-3) trained EPOCHS epochs by
# each genlab binary and by PyTorch (bench/reference/vae.py, the same recipe, 2 threads), in
# interleaved rounds. Long trainings leave Adam moments stuck in the subnormal range (issue 22;
# BENCHMARKS.md, "Adam's moments stuck below the normal range"), which CPUs that handle
# subnormals slowly (Intel's) pay for at every step; PyTorch, which does not flush them, too.
# Prints, per side, the median over rounds of the training images/s of epochs 2-6 (early) and of
# the last 5 epochs (late), late / early, and each genlab binary's ratio to PyTorch early and late
# (and late, per round: the spread is the machine's noise).
#
# Usage: bash bench/long_training.sh [BIN...]   (default: target/release/genlab)
#   e.g. a build before the flush against this one:
#   bash bench/long_training.sh /tmp/genlab-e28677b target/release/genlab
# Env: EPOCHS (default 50; at least 10), ROUNDS (default 3), OUT (keep the runs and JSON here).
set -euo pipefail
cd "$(dirname "$0")/.."
bins=("${@:-target/release/genlab}")
epochs=${EPOCHS:-50}
rounds=${ROUNDS:-3}
if [ "$epochs" -lt 10 ]; then
  echo "long_training: EPOCHS = $epochs: at least 10 (5 early and 5 late epochs)" >&2
  exit 2
fi
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
for r in $(seq "$rounds"); do
  for i in "${!bins[@]}"; do
    run="$out/genlab$i-r$r"
    if [ -e "$run" ]; then
      echo "long_training: $run exists; name a new OUT" >&2
      exit 2
    fi
    "${bins[$i]}" train vae --epochs "$epochs" -q -o "$run" >/dev/null 2>"$run.log"
  done
  python3 bench/reference/vae.py --model mlp --dataset mnist-10k --threads 2 --epochs "$epochs" \
    --json "$out/torch-r$r.json" >/dev/null
done
python3 - "$out" "$rounds" "$epochs" "${bins[@]}" <<'PY'
import json, os, statistics as st, sys
out, rounds, epochs, bins = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]

def early_late(ips):
    return st.median(ips[1:6]), st.median(ips[-5:])

def genlab(i, r):
    with open(f"{out}/genlab{i}-r{r}/metrics.jsonl") as f:
        return early_late([json.loads(line)["images_per_sec"] for line in f])

def torch(r):
    with open(f"{out}/torch-r{r}.json") as f:
        return early_late([e["images_per_s"] for e in json.load(f)["epochs"]])

sys.path.insert(0, "bench")
from cpuinfo import describe
cpu = describe()
print(f"CPU: {cpu}; MLP VAE, {epochs} epochs of mnist-10k, {rounds} rounds, medians over rounds")
print("| side | early img/s (epochs 2-6) | late img/s (last 5) | late / early | / PyTorch early | / PyTorch late | late / PyTorch's, per round |")
print("|---|---:|---:|---:|---:|---:|---|")
rows = [(f"genlab{i} ({os.path.basename(b)})", [genlab(i, r) for r in range(1, rounds + 1)]) for i, b in enumerate(bins)]
rows.append(("PyTorch", [torch(r) for r in range(1, rounds + 1)]))
med = {name: (st.median(e for e, _ in v), st.median(l for _, l in v)) for name, v in rows}
te, tl = med["PyTorch"]
for name, _ in rows:
    e, l = med[name]
    per = ", ".join(f"{g[1] / t[1]:.2f}" for g, t in zip(dict(rows)[name], dict(rows)["PyTorch"]))
    vs = "| | |" if name == "PyTorch" else f"{e / te:.2f} | {l / tl:.2f} | {per} |"
    print(f"| {name} | {e:,.0f} | {l:,.0f} | {l / e:.2f} | {vs}")
PY
