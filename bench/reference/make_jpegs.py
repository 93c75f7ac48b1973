"""Writes N distinct JPEG photos-like images (smooth colour fields plus noise, SIDE x SIDE) into
DIR/class_K/ (10 class folders), for the pack benchmark (bench/pack_speed.sh). Deterministic.

usage: python3 make_jpegs.py DIR N [SIDE]
"""
import os
import sys
from multiprocessing import Pool

import numpy as np
from PIL import Image

DIR, N = sys.argv[1], int(sys.argv[2])
SIDE = int(sys.argv[3]) if len(sys.argv) > 3 else 64


def write(chunk):
    lo, hi = chunk
    rng = np.random.default_rng(lo)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / SIDE
    for i in range(lo, hi):
        a = rng.uniform(0, 6.3, size=(3, 3)).astype(np.float32)
        img = np.stack([
            127 + 100 * np.sin(a[c, 0] * 3 * xx + a[c, 1] * 3 * yy + a[c, 2]) for c in range(3)
        ], axis=-1)
        img += rng.normal(0, 12, size=img.shape)
        px = np.clip(img, 0, 255).astype(np.uint8)
        Image.fromarray(px).save(os.path.join(DIR, f"class_{i % 10}", f"{i:07d}.jpg"), quality=90)


if __name__ == "__main__":
    for k in range(10):
        os.makedirs(os.path.join(DIR, f"class_{k}"), exist_ok=True)
    step = 2000
    with Pool(2) as p:
        p.map(write, [(lo, min(lo + step, N)) for lo in range(0, N, step)])
