#!/usr/bin/env bash
# Super-resolution speed, genlab vs PyTorch, one after the other on the same (idle) machine:
#  - upscaling: the shipped FSRCNN x2 on a 1000x1000 (1-megapixel) Y plane, input megapixels/s
#    (genlab: `genlab bench -w fsrcnn-upscale`, tiles of 128 as `genlab upscale` runs it;
#     PyTorch: bench/reference/fsrcnn.py --speed, the whole plane in one no-grad forward);
#  - training (W4): FSRCNN x2 steps on 32x32 LR patches, batch 32, patches/s
#    (genlab: `genlab bench -w fsrcnn`; PyTorch: fsrcnn.py --train-speed).
# Both: median of 7 two-second windows, 2 threads.
# Usage: bash bench/sr_speed.sh   (needs: cargo build --release -p genlab-cli; python3 with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/genlab
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" bench -w fsrcnn-upscale --json "$tmp/g-up.json" >/dev/null
python3 bench/reference/fsrcnn.py --speed --threads 2 --weights crates/genlab/models/fsrcnn-x2/weights.safetensors --json "$tmp/p-up.json" >/dev/null
"$bin" bench -w fsrcnn --json "$tmp/g-tr.json" >/dev/null
python3 bench/reference/fsrcnn.py --train-speed --threads 2 --json "$tmp/p-tr.json" >/dev/null
python3 - "$tmp" <<'PY'
import json, sys
t = sys.argv[1]
g_up = json.load(open(f"{t}/g-up.json"))["workloads"][0]["median_images_per_s"]
p_up = json.load(open(f"{t}/p-up.json"))["median_mp_per_s"]
g_tr = json.load(open(f"{t}/g-tr.json"))["workloads"][0]["median_images_per_s"]
p_tr = json.load(open(f"{t}/p-tr.json"))["median_patches_per_s"]
print(f"FSRCNN x2 upscaling 1 MP: genlab {g_up:.3f} MP/s, PyTorch {p_up:.3f} MP/s, ratio {g_up/p_up:.2f}")
print(f"FSRCNN x2 training (W4): genlab {g_tr:.1f} patches/s, PyTorch {p_tr:.1f} patches/s, ratio {g_tr/p_tr:.2f}")
PY
