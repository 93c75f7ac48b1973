#!/usr/bin/env python3
"""Are two safetensors files the same weights, bit for bit?

Usage: python3 bench/same_weights.py A.safetensors B.safetensors [C.safetensors ...]

Compares every file after the first with the first: the same tensor names, dtypes and shapes,
and the same bytes in each tensor. Prints one line per file, and the largest difference per
tensor when there is one; exits 1 if any file differs. Compare weights this way, not with cmp:
burn writes the header's `__metadata__` map in hash order, so two runs of one binary can give
files whose bytes differ while every tensor is equal. Needs only NumPy (no safetensors package).
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64,
          "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    body = raw[8 + n:]
    out = {}
    for name, t in header.items():
        start, end = t["data_offsets"]
        out[name] = (t["dtype"], tuple(t["shape"]), body[start:end])
    return out


def main(paths):
    if len(paths) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    ref = load(paths[0])
    differ = False
    for path in paths[1:]:
        other = load(path)
        if set(other) != set(ref):
            print(f"{path}: tensor names differ from {paths[0]}: "
                  f"{sorted(set(ref) ^ set(other))}")
            differ = True
            continue
        bad = []
        for name, (dtype, shape, data) in ref.items():
            odtype, oshape, odata = other[name]
            if (odtype, oshape) != (dtype, shape):
                bad.append(f"{name}: {odtype}{list(oshape)} vs {dtype}{list(shape)}")
            elif odata != data:
                a = np.frombuffer(data, DTYPES[dtype]).astype(np.float64)
                b = np.frombuffer(odata, DTYPES[dtype]).astype(np.float64)
                bad.append(f"{name}: max |diff| {np.max(np.abs(a - b)):.3g}")
        if bad:
            differ = True
            print(f"{path}: {len(bad)} of {len(ref)} tensors differ")
            for line in bad:
                print(f"  {line}")
        else:
            print(f"{path}: all {len(ref)} tensors bit-identical to {paths[0]}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
