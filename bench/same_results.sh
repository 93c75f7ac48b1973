#!/usr/bin/env bash
# Trains every family briefly with fixed seeds and compares the runs' metrics.jsonl between two
# genlab builds (timings left out): what a refactor that must not change results is checked with.
#
# Usage: bash bench/same_results.sh OLD_BIN NEW_BIN [OUT]   (from the repository root; the SR run
# reads ../shared/data/sr). Prints one line per run: identical, or the first differing lines.
set -u
old=$1; new=$2; out=${3:-$(mktemp -d)}
cd "$(dirname "$0")/.."
runs=(
  "vae|vae --epochs 2"
  "convvae|vae --arch conv --epochs 2"
  "ae|ae --epochs 2"
  "gan|gan --epochs 2"
  "vaegan|vae-gan --epochs 2"
  "clf|classifier --epochs 2"
  "sr|sr --images ../shared/data/sr/train --val ../shared/data/sr/Set5/x2 --epochs 2 --steps 150"
  "vae10|vae"
)
strip() {
  python3 -c '
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    for k in ("images_per_sec", "elapsed_secs", "patches_per_sec"):
        d.pop(k, None)
    print(json.dumps(d, sort_keys=True))' "$1"
}
for r in "${runs[@]}"; do
  name=${r%%|*}; args=${r#*|}
  for side in old new; do
    bin=$old; [ $side = new ] && bin=$new
    rm -rf "$out/$side-$name"
    # shellcheck disable=SC2086
    "$bin" train $args --out "$out/$side-$name" -q > "$out/$side-$name.log" 2>&1 || echo "$name: $side failed (see $out/$side-$name.log)"
  done
  if diff <(strip "$out/old-$name/metrics.jsonl") <(strip "$out/new-$name/metrics.jsonl") > "$out/$name.diff"; then
    echo "$name: identical"
  else
    echo "$name: differs"; head -4 "$out/$name.diff"
  fi
done
