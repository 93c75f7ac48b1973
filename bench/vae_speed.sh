#!/usr/bin/env bash
# Training speed, genlab vs PyTorch, one after the other on the same (idle) machine, same method:
# batch 128 of mnist-10k's train split, 5 warm-up steps, median images/s of 7 two-second windows.
# genlab: `genlab bench -w WORKLOAD` (one process per workload, so peak RSS is per workload);
# PyTorch: bench/reference/vae.py --speed (same windows).
# Usage: bash bench/vae_speed.sh   (needs: cargo build --release -p genlab-cli; python3 with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/genlab
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for arch in mlp conv; do
  "$bin" bench -w "$arch-vae" --json "$tmp/g-$arch.json" >/dev/null
  python3 bench/reference/vae.py --speed --model "$arch" --dataset mnist-10k --threads 2 --json "$tmp/py-$arch.json" >/dev/null
  python3 - "$arch" "$tmp/g-$arch.json" "$tmp/py-$arch.json" <<'PY'
import json, sys
arch, g, p = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
gi = g["workloads"][0]["median_images_per_s"]; pi = p["median_images_per_s"]
print(f"{arch} VAE: genlab {gi:.0f} img/s (peak RSS {g['peak_rss_mib']:.0f} MiB), "
      f"PyTorch {pi:.0f} img/s (peak RSS {p['peak_rss_mib']:.0f} MiB), ratio {gi/pi:.2f}")
PY
done
