#!/usr/bin/env python3
"""How close the studio's "your image" view gets on real digits (bench/studio.sh runs it): the
first N MNIST test images (../shared/data), each uploaded to a GAN run's inversion (300 Adam
steps, and 1 step as the no-search baseline: the best of 4 random noises) and to a VAE run's
encoder. Prints one JSON line of median PSNRs (dB, pixels in [0, 1]) and times.

usage: studio_invert.py HOST:PORT GAN_ID VAE_ID MNIST_IMAGES.gz [--n 20]
"""
import argparse
import gzip
import http.client
import json
import math
import statistics
import struct
import time
import zlib


def png(px, w=28, h=28):
    raw = b"".join(b"\x00" + px[r * w:(r + 1) * w] for r in range(h))
    ch = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + ch(b"IHDR", ihdr) + ch(b"IDAT", zlib.compress(raw)) + ch(b"IEND", b"")


def post(addr, path, body):
    c = http.client.HTTPConnection(addr, timeout=600)
    t = time.perf_counter()
    c.request("POST", path, body=body, headers={"content-type": "image/png"})
    r = c.getresponse()
    out = json.loads(r.read())
    assert r.status == 200, out
    return out, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("gan", type=int)
    ap.add_argument("vae", type=int)
    ap.add_argument("images")
    ap.add_argument("--n", type=int, default=20)
    a = ap.parse_args()
    data = gzip.open(a.images).read()[16:]
    res = {"inv300": [], "inv1": [], "vae": [], "t300": []}
    for i in range(a.n):
        img = png(data[i * 784:(i + 1) * 784])
        o, t = post(a.addr, f"/api/runs/{a.gan}/invert?steps=300", img)
        res["inv300"].append(o["psnr"])
        res["t300"].append(t)
        o, _ = post(a.addr, f"/api/runs/{a.gan}/invert?steps=1", img)
        res["inv1"].append(o["psnr"])
        o, _ = post(a.addr, f"/api/runs/{a.vae}/encode", img)
        res["vae"].append(-10 * math.log10(max(o["mse"], 1e-10)))
    med = lambda k: round(statistics.median(res[k]), 2)
    print(json.dumps({
        "images": a.n,
        "gan_inversion_300_steps_psnr_db": med("inv300"),
        "gan_inversion_1_step_psnr_db": med("inv1"),
        "vae_reconstruction_psnr_db": med("vae"),
        "inversion_300_steps_median_s": med("t300"),
    }))


if __name__ == "__main__":
    main()
