#!/usr/bin/env bash
# Issue 5, step 4: the four training workloads on a GPU, genlab (`--device wgpu`, Vulkan) against
# PyTorch (CUDA), on the `device` tool's machine, interleaved (genlab, PyTorch, genlab, ...).
# Not run yet: no session so far was lent a device. Prepared so that one `run` call does it.
#
# Here, once (the device machine has no network and no Rust toolchain worth a build):
#   cargo build --release -p genlab-cli --features wgpu
#   mkdir -p .gpu && cp target/release/genlab .gpu/ && echo /.gpu/ >> .git/info/exclude
#   and the Vulkan loaders into .gl, with the one-liner in /work/.library/device/README.md.
# There, one `run` with carry [".gpu", ".gl"]:
#   bash bench/gpu_speed.sh            (writes the JSON and the table under $OUT)
# Env: ROUNDS (default 2), WORKLOADS (default "mlp-vae conv-vae dcgan fsrcnn"), BIN (default
# .gpu/genlab), OUT (where the JSON goes; the device tool sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-.gpu/genlab}
rounds=${ROUNDS:-2}
workloads=${WORKLOADS:-"mlp-vae conv-vae dcgan fsrcnn"}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
if compgen -G ".gl/*.deb" >/dev/null; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt"

torch() { # workload json
  local t=$(nproc)
  case $1 in
    mlp-vae) python3 bench/reference/vae.py --speed --model mlp --dataset mnist-10k --device cuda --threads "$t" --json "$2" ;;
    conv-vae) python3 bench/reference/vae.py --speed --model conv --dataset mnist-10k --device cuda --threads "$t" --json "$2" ;;
    dcgan) python3 bench/reference/dcgan.py --speed --device cuda --threads "$t" --json "$2" ;;
    fsrcnn) python3 bench/reference/fsrcnn.py --train-speed --device cuda --threads "$t" --json "$2" ;;
  esac >/dev/null
}

for w in $workloads; do
  for r in $(seq "$rounds"); do
    "$bin" bench -w "$w" --device wgpu --json "$out/$w-g0-r$r.json" >/dev/null
    torch "$w" "$out/$w-torch-r$r.json"
  done
done

python3 - "$out" "$rounds" "$workloads" <<'PY' | tee "$out/table.md"
import json, statistics, sys
out, rounds, workloads = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
print("| workload | PyTorch CUDA img/s | genlab wgpu img/s | ratio | per round (genlab/PyTorch) |")
print("|---|---:|---:|---:|---|")
for w in workloads:
    g = [json.load(open(f"{out}/{w}-g0-r{r}.json"))["workloads"][0]["median_images_per_s"] for r in range(1, rounds + 1)]
    t = []
    for r in range(1, rounds + 1):
        d = json.load(open(f"{out}/{w}-torch-r{r}.json"))
        t.append(d.get("median_images_per_s", d.get("median_patches_per_s")))
    gm, tm = statistics.median(g), statistics.median(t)
    rows = ", ".join(f"{a:,.0f}/{b:,.0f}" for a, b in zip(g, t))
    print(f"| {w} | {tm:,.0f} | {gm:,.0f} | {gm / tm:.2f} | {rows} |")
PY
