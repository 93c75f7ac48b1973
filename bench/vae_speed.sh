#!/usr/bin/env bash
# Training speed, genlab vs PyTorch, one after the other on the same (idle) machine.
# genlab: per-epoch training images/s on mnist-10k (batch 128, Adam, evaluation excluded),
# median over epochs; PyTorch: bench/reference/vae.py --speed (median of 7 ~2 s windows).
# Usage: bash bench/vae_speed.sh   (needs: cargo build --release; python3 with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/genlab
tmp=$(mktemp -d)
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for arch in mlp conv; do
  epochs=5; [ "$arch" = conv ] && epochs=3
  /usr/bin/time -f "%M" -o "$tmp/rss-$arch" "$bin" train vae --arch "$arch" --epochs "$epochs" --out "$tmp/$arch" -q >/dev/null
  g=$(grep -o '"images_per_sec":[0-9.]*' "$tmp/$arch/metrics.jsonl" | cut -d: -f2 | median)
  python3 bench/reference/vae.py --speed --model "$arch" --dataset mnist-10k --threads 2 --json "$tmp/py-$arch.json" >/dev/null
  p=$(python3 -c "import json,sys; d=json.load(open('$tmp/py-$arch.json')); print(d['median_images_per_s'])")
  prss=$(python3 -c "import json; d=json.load(open('$tmp/py-$arch.json')); print(round(d['peak_rss_mib']))")
  printf '%s VAE: genlab %.0f img/s (peak RSS %d MiB), PyTorch %.0f img/s (peak RSS %s MiB), ratio %.2f\n' \
    "$arch" "$g" "$(( $(cat "$tmp/rss-$arch") / 1024 ))" "$p" "$prss" "$(python3 -c "print($g/$p)")"
done
rm -rf "$tmp"
