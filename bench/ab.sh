#!/usr/bin/env bash
# Two genlab binaries against each other on the `genlab bench` workloads, interleaved
# (A B A B ...) so the machine's drift hits both alike. For each workload: the median over rounds
# of each binary's images/s (itself the median of its timed windows), their ratio B / A, and the
# per-round ratios, whose spread is this machine's noise.
#
# Usage: bash bench/ab.sh BIN_A BIN_B ROUNDS WORKLOAD...
#   e.g. git stash && cargo build --release -p genlab-cli && cp target/release/genlab /tmp/genlab-a
#        git stash pop && cargo build --release -p genlab-cli
#        bash bench/ab.sh /tmp/genlab-a target/release/genlab 5 conv-vae dcgan
# Env: OUT (keep the JSON here; default a temporary folder).
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: bash bench/ab.sh BIN_A BIN_B ROUNDS WORKLOAD..." >&2
  exit 2
fi
a=$1 b=$2 rounds=$3
shift 3
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
for w in "$@"; do
  for r in $(seq "$rounds"); do
    "$a" bench -w "$w" --json "$out/$w-a-$r.json" >/dev/null
    "$b" bench -w "$w" --json "$out/$w-b-$r.json" >/dev/null
  done
  python3 - "$out" "$w" "$rounds" <<'PY'
import json, statistics, sys
out, w, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
ips = lambda f: json.load(open(f))["workloads"][0]["median_images_per_s"]
a = [ips(f"{out}/{w}-a-{r}.json") for r in range(1, rounds + 1)]
b = [ips(f"{out}/{w}-b-{r}.json") for r in range(1, rounds + 1)]
ma, mb = statistics.median(a), statistics.median(b)
per = ", ".join(f"{y / x:.2f}" for x, y in zip(a, b))
print(f"{w}: A {ma:,.0f} img/s, B {mb:,.0f} img/s, B / A {mb / ma:.3f} (per round: {per})")
PY
done
