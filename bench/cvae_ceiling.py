#!/usr/bin/env python3
"""Where a cVAE's label accuracy is lost: the prior, or the decoder? Through a running studio
(`genlab serve RUN`, the cVAE as run 0), writes three sets of 1,000 images per class into
OUT/{prior,gauss,recon}/CLASS/NNNN.png, to score with
`genlab eval --samples OUT/MODE --dataset fashion-mnist`:
  prior: styles drawn from the model's prior N(0, I) (what `genlab eval` scores; a check of
         this pipeline),
  gauss: styles drawn from a full-covariance Gaussian fitted to each class's encoded training
         images (ex-post density estimation, Ghosh et al. 2020),
  recon: the encoded training images themselves, decoded (reconstructions: what any prior could
         at best give, for this decoder).

usage: cvae_ceiling.py HOST:PORT OUT TRAIN_IMAGES.gz TRAIN_LABELS.gz [--per-class 1000]
"""
import argparse
import gzip
import http.client
import json
import os
import struct
import zlib

import numpy as np


def png(px, side):
    raw = b"".join(b"\x00" + px[r * side:(r + 1) * side].tobytes() for r in range(side))
    ch = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + ch(b"IHDR", ihdr) + ch(b"IDAT", zlib.compress(raw)) + ch(b"IEND", b"")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("out")
    ap.add_argument("images")
    ap.add_argument("labels")
    ap.add_argument("--per-class", type=int, default=1000)
    a = ap.parse_args()
    conn = http.client.HTTPConnection(a.addr, timeout=600)

    def call(method, path, body=None, ctype="application/json"):
        conn.request(method, path, body=body, headers={"content-type": ctype})
        r = conn.getresponse()
        d = r.read()
        assert r.status == 200, d[:300]
        return d

    info = json.loads(call("GET", "/api/runs/0/map"))
    names, latent, side = info["classes"], info["latent"], info["image"][1]
    assert names and info["can_encode"], "run 0 must be a cVAE"
    x = np.frombuffer(gzip.open(a.images).read()[16:], np.uint8).reshape(-1, side * side)
    y = np.frombuffer(gzip.open(a.labels).read()[8:], np.uint8)
    rng = np.random.default_rng(0)
    n = a.per_class
    for k, name in enumerate(names):
        idx = np.where(y == k)[0][:2 * n]
        codes = np.array([json.loads(call("POST", f"/api/runs/0/encode?class={k}", png(x[i], side),
                                          "image/png"))["z"] for i in idx])
        sets = {
            "prior": rng.standard_normal((n, latent)),
            "gauss": rng.multivariate_normal(codes.mean(0), np.cov(codes.T), n),
            "recon": codes[:n],
        }
        for mode, styles in sets.items():
            d = os.path.join(a.out, mode, name)
            os.makedirs(d, exist_ok=True)
            for i, s in enumerate(styles):
                body = json.dumps({"z": s.tolist(), "class": k})
                with open(os.path.join(d, f"{i:04}.png"), "wb") as f:
                    f.write(call("POST", "/api/runs/0/decode", body))
        print(f"{name}: style mean norm {np.linalg.norm(codes.mean(0)):.2f}, "
              f"std {np.sqrt(np.diag(np.cov(codes.T))).mean():.2f}", flush=True)


if __name__ == "__main__":
    main()
