#!/usr/bin/env bash
# The studio on README's runs (`genlab train vae` and `genlab train gan`: 10 epochs of mnist-10k), CPU:
#  - the API (bench/studio_load.py): decode latency one request at a time (p50, p99 of 500),
#    200 decodes fired at once, a burst of 50 uploads, the server's memory before and after;
#  - "your image" on the first 20 MNIST test digits: GAN inversion (300 Adam steps against 1, the
#    no-search baseline) and VAE encoding, median PSNR (bench/studio_invert.py);
#  - the page in headless Chromium (crates/genlab-cli/tests/browser/studio.py): page ready,
#    and slider-to-image latency measured in the page (input event to image loaded), 200 moves.
# With --shots DIR it also saves the page's screenshots there (README's come from this run,
# with an MNIST test digit as the upload and Set5's butterfly (low-resolution x2 input) as the photo, from ../shared/data).
# Usage: bash bench/studio.sh [--shots DIR]
#   (needs: cargo build --release -p genlab-cli; chromium, chromium-driver, pip selenium)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/target/release/genlab
root=$PWD
shots=""
[ "${1:-}" = "--shots" ] && shots=$(realpath -m "$2") && mkdir -p "$shots"
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
cd "$tmp"
"$bin" train vae -q --out runs/vae >/dev/null
"$bin" train gan -q --out runs/gan >/dev/null
# An MNIST test digit (index 0, a 7) as the upload; a photo for the super-resolution view.
python3 - "$root" <<'PY'
import gzip, struct, sys, zlib
root = sys.argv[1]
def png(path, w, h, rows, colour):
    raw = b"".join(b"\x00" + r for r in rows)
    ch = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2 if colour else 0, 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + ch(b"IHDR", ihdr) + ch(b"IDAT", zlib.compress(raw)) + ch(b"IEND", b""))
try:
    px = gzip.open(f"{root}/../shared/data/mnist/t10k-images-idx3-ubyte.gz").read()[16:16 + 784]
except OSError:  # no ../shared: a drawn stroke instead
    px = bytes(255 if 8 < x < 20 and abs(y - x) < 3 else 0 for y in range(28) for x in range(28))
png("digit.png", 28, 28, [px[r * 28:(r + 1) * 28] for r in range(28)], False)
PY
photo=$(ls "$root"/../shared/data/sr/Set5/x2/img_003_SRF_2_LR.png 2>/dev/null || true)
[ -n "$photo" ] || photo=digit.png
"$bin" serve runs/vae runs/gan --port 0 > serve.log 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q http:// serve.log 2>/dev/null && break; sleep 0.1; done
addr=$(grep -o 'http://[0-9.:]*' serve.log | head -1 | sed 's|http://||')
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(grep -o 'avx512f\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "API load (README VAE):"
python3 "$root/bench/studio_load.py" "$addr" "$pid" digit.png
mnist="$root/../shared/data/mnist/t10k-images-idx3-ubyte.gz"
if [ -f "$mnist" ]; then
  echo "your image on real digits (GAN inversion, VAE encoding):"
  python3 "$root/bench/studio_invert.py" "$addr" 1 0 "$mnist"
fi
echo "browser (headless Chromium):"
python3 "$root/crates/genlab-cli/tests/browser/studio.py" "http://$addr/" --upload digit.png \
  --photo "$photo" --moves 200 --invert-run 1 ${shots:+--out "$shots"}
