#!/usr/bin/env python3
"""How many float32 values of a run's files are subnormal (issue 22): weights and optimizer state.

    python3 bench/subnormals.py RUN/weights.safetensors RUN/state/optimizer-*.bpk

A `.safetensors` file is read exactly, tensor by tensor (F32 tensors only). A `.bpk` (burn's
binary record of the optimizer: each moment tensor's bytes, little-endian, between short
headers) is read as one array of float32 at the byte offset (0-3) where the most values look
like moments (finite, below 1e4 in magnitude); the headers then add a few tens of stray values
to the counts, so shares under about 0.01% are noise. Prints, per file, the values read and
the subnormal and zero counts.
"""
import json
import struct
import sys

import numpy as np


def safetensors_f32(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    parts = [
        np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], dtype="<f4")
        for k, v in header.items()
        if k != "__metadata__" and v["dtype"] == "F32"
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype="<f4")


def record_f32(path):
    with open(path, "rb") as f:
        raw = f.read()
    best = None
    for off in range(4):
        a = np.frombuffer(raw[off:off + (len(raw) - off) // 4 * 4], dtype="<f4")
        share = (np.isfinite(a) & (np.abs(a) < 1e4)).mean() if a.size else 0.0
        if best is None or share > best[0]:
            best = (share, a)
    return best[1]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().split("\n\n")[1].strip())
    for path in sys.argv[1:]:
        a = safetensors_f32(path) if path.endswith(".safetensors") else record_f32(path)
        bits = a.view("<u4")
        zero = (bits & 0x7FFFFFFF) == 0
        sub = ((bits >> 23) & 0xFF == 0) & ~zero
        n = max(a.size, 1)
        print(f"{path}: {a.size} values, subnormal {sub.sum()} ({100 * sub.sum() / n:.3f}%), "
              f"zero {zero.sum()} ({100 * zero.sum() / n:.2f}%)")


if __name__ == "__main__":
    main()
