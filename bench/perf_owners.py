#!/usr/bin/env python3
"""Where a genlab run's time goes, from `perf script` output of a call-graph profile.

Each sample is charged to its "owner": the first genlab or burn function on its stack (so gemm's
kernels, pulp's vectorised closures and libc's memset count against the genlab op that called
them), and separately to its leaf function. With --threads it also prints, per thread, its
sample count and owners, and for the thread with most samples the share of its samples outside
any rayon parallel region (the serial part of a step, where the other workers wait).

    perf record -F 299 --call-graph dwarf,16384 -o W.data target/release/genlab bench -w dcgan --windows 2
    perf script -i W.data | python3 bench/perf_owners.py [--top N] [--threads]

Samples whose unwinding lost the caller (a rayon worker running stolen work) have no genlab
frame; they are listed under their leaf, as "? <leaf>".
"""
import argparse
import collections
import sys

# Frames that mark a sample as inside a rayon parallel region.
PARALLEL = ("join_context", "bridge_producer_consumer", "in_worker", "StackJob", "rayon_core::scope")


def samples(lines):
    """Yields (thread id, [frames leaf first]) per sample of `perf script` output."""
    tid, stack = None, []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if stack:
                yield tid, stack
            tid, stack = None, []
        elif not line.startswith((" ", "\t")):
            fields = line.split()
            tid = fields[1] if len(fields) > 1 else "?"
        else:
            parts = line.strip().split(" ", 1)
            if len(parts) == 2:
                # "ffff... symbol+0x1a (dso)" -> "symbol"
                stack.append(parts[1].rsplit(" (", 1)[0].rsplit("+0x", 1)[0])
    if stack:
        yield tid, stack


def owner(stack):
    for frame in stack:
        if ("genlab" in frame or "burn" in frame) and "vectorize" not in frame:
            return frame
    return "? " + stack[0]


def table(title, counter, total, top):
    print(f"--- {title}")
    for name, n in counter.most_common(top):
        print(f"{100 * n / total:5.1f}%  {name[:140]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--threads", action="store_true")
    a = ap.parse_args()
    owners, leaves = collections.Counter(), collections.Counter()
    per_thread = collections.defaultdict(collections.Counter)
    serial = collections.defaultdict(collections.Counter)
    total = 0
    for tid, stack in samples(sys.stdin):
        total += 1
        o = owner(stack)
        owners[o] += 1
        leaves[stack[0]] += 1
        per_thread[tid][o] += 1
        if not any(any(m in f for m in PARALLEL) for f in stack):
            serial[tid][o] += 1
    if total == 0:
        sys.exit("no samples: pipe `perf script` of a call-graph profile into this")
    print(f"{total} samples")
    table("owner (first genlab or burn frame)", owners, total, a.top)
    table("leaf", leaves, total, a.top)
    if a.threads:
        for tid, c in sorted(per_thread.items(), key=lambda kv: -sum(kv[1].values())):
            n = sum(c.values())
            if n < total / 50:
                continue
            s = sum(serial[tid].values())
            print(f"--- thread {tid}: {n} samples, {100 * s / n:.1f}% outside rayon parallel regions")
            for name, k in serial[tid].most_common(min(a.top, 12)):
                print(f"  serial {100 * k / n:5.1f}%  {name[:120]}")


if __name__ == "__main__":
    main()
