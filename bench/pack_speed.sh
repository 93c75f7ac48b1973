#!/usr/bin/env bash
# Issue 21 part 1: an image folder larger than genlab needs in memory, packed and trained from.
# On a generated folder of N (default 200,000) 64x64 JPEGs in 10 class folders (made here, in
# $WORK, not checked in; about 1 GB):
#   1. pack time: `genlab data pack DIR --image 3,64,64` (all cores), images/s;
#   2. the reference: Pillow + torch DataLoader(num_workers=2), one shuffled epoch decoding the
#      same folder to 64x64 uint8 tensors, images/s and time to the first batch;
#   3. time to the first training step from the ready pack: `genlab train gan --preset
#      folder-dcgan-64 --dataset PACK --dry-run` (start, one step, a test pass and a checkpoint);
#   4. peak memory while training one full epoch from the pack (an MLP VAE on 64x64x3, so the
#      epoch is quick and touches every image): peak RSS, and of it the file-backed (mapped pack)
#      and anonymous parts, sampled every 0.2 s from /proc, against the pack's size.
# Usage: bash bench/pack_speed.sh [GENLAB_BIN]   Env: N, WORK (default a temp folder, deleted).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/genlab}
n=${N:-200000}
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
[ -z "${WORK:-}" ] && trap 'rm -rf "$work"' EXIT
dir="$work/jpegs"
pack="$work/jpegs.glpack"
export XDG_CACHE_HOME="$work/cache"

echo "$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(grep -o -w 'avx2\|avx512f\|avx512bw\|avx512vl' /proc/cpuinfo | sort -u | tr '\n' ' ')"
if [ ! -d "$dir" ] || [ "$(find "$dir" -name '*.jpg' | wc -l)" -ne "$n" ]; then
  rm -rf "$dir"
  t0=$(date +%s.%N)
  python3 bench/reference/make_jpegs.py "$dir" "$n" 64
  echo "made $n JPEGs ($(du -sh "$dir" | cut -f1)) in $(echo "$(date +%s.%N) - $t0" | bc) s"
fi
sync

# Cold-ish page cache for both readers alike is not possible without root's drop_caches; both
# run after the folder was just written (warm), which favours neither.
rm -f "$pack"
t0=$(date +%s.%N)
"$bin" data pack "$dir" -o "$pack" --image 3,64,64 -q
t=$(echo "$(date +%s.%N) - $t0" | bc)
printf 'genlab pack: %d images in %.1f s = %.0f images/s; pack %s\n' "$n" "$t" "$(echo "$n / $t" | bc -l)" "$(du -h "$pack" | cut -f1)"

python3 bench/reference/folder_loader.py "$dir" 64 --workers 2 --batch 128

# Runs a command, sampling its memory; prints wall time and peaks (MiB).
measured() {
  python3 - "$@" <<'PY'
import subprocess, sys, time
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
t0 = time.perf_counter()
peak = {"VmRSS": 0, "RssFile": 0, "RssAnon": 0}
while p.poll() is None:
    try:
        for line in open(f"/proc/{p.pid}/status"):
            k, _, v = line.partition(":")
            if k in peak:
                peak[k] = max(peak[k], int(v.split()[0]) // 1024)
    except OSError:
        pass
    time.sleep(0.2)
dt = time.perf_counter() - t0
if p.returncode:
    sys.exit(f"{sys.argv[1:]} failed with {p.returncode}")
print(f"{dt:.2f} s; peak RSS {peak['VmRSS']} MiB (mapped file {peak['RssFile']} MiB, anonymous {peak['RssAnon']} MiB)")
PY
}

rm -rf "$work/run-gan"
echo "genlab first step from the pack (dry run: start, 1 step, test pass, checkpoint): $(measured "$bin" train gan --preset folder-dcgan-64 --dataset "$pack" --dry-run -q --out "$work/run-gan")"

cat > "$work/vae64.toml" <<TOML
[model]
kind = "vae"
arch = "mlp"
hidden = [128]
latent = 16

[train]
dataset = "mnist-10k"
epochs = 1
batch_size = 128
max_test_images = 2000
TOML
rm -rf "$work/run-vae"
echo "genlab one epoch of an MLP VAE from the $(du -h "$pack" | cut -f1) pack: $(measured "$bin" train vae --preset "$work/vae64.toml" --dataset "$pack" -q --out "$work/run-vae")"
