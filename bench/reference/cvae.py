#!/usr/bin/env python3
"""PyTorch reference for genlab's conditional VAE (crates/genlab/configs/{mnist,fashion}-cvae.toml).

The MLP cVAE of crates/genlab/src/models/cvae.rs, written from its description and sharing no
code with genlab:
  encoder   [x (784), one-hot y (10)] -> Linear 400 -> ReLU -> (mu, logvar) 20 each,
            logvar clamped to [-30, 20]
  prior     p(z|y) = N(m_y, I), m_y = 10 * W y with W (20x10, no bias) starting at zero
  decoder   [z (20), one-hot y] -> Linear 400 -> ReLU -> Linear 784 (Bernoulli logits)
Loss per image: BCE-with-logits summed over the pixels + KL(N(mu, exp(logvar)) || N(m_y, I));
training objective: the batch mean; Adam(lr=1e-3), batch 128, reshuffled every epoch, last
partial batch kept. Data as bench/reference/vae.py reads it (p/255, not binarized).

--samples-out DIR writes N samples of every class, z = m_y + eps with eps ~ N(0, I), as 28x28
grey PNGs in DIR/CLASS/NNNN.png: the layout `genlab eval --samples DIR --dataset D` scores for
label accuracy and per-class FD with genlab's shipped classifier.

Example (BENCHMARKS.md, "Class-conditional generation"):
  python3 bench/reference/cvae.py --dataset fashion-mnist --epochs 10 --samples-out /tmp/ref \
      --json bench/reference/results/cvae-mlp-fashion-mnist.json
  genlab eval --samples /tmp/ref --dataset fashion-mnist
"""
import argparse
import json
import os
import platform
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vae import FASHION_DIR, MNIST10K, read_idx, to_float  # noqa: E402

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                   "sneaker", "bag", "ankle-boot"]


def load(name):
    """((train images [N,784], labels [N]), (test ...)), split as genlab splits them."""
    if name == "fashion-mnist":
        parts = []
        for split in ("train", "t10k"):
            x = read_idx(os.path.join(FASHION_DIR, f"{split}-images-idx3-ubyte.gz"))
            y = read_idx(os.path.join(FASHION_DIR, f"{split}-labels-idx1-ubyte.gz"))
            parts.append((to_float(x), torch.from_numpy(y.astype(np.int64))))
        return parts[0], parts[1]
    x = read_idx(MNIST10K)
    y = read_idx(MNIST10K.replace("images-idx3", "labels-idx1"))
    test = np.arange(x.shape[0]) % 10 == 9
    as_t = lambda ims, ls: (to_float(ims), torch.from_numpy(ls.astype(np.int64)))  # noqa: E731
    return as_t(x[~test], y[~test]), as_t(x[test], y[test])


class Cvae(nn.Module):
    def __init__(self, classes=10, hidden=400, latent=20, pixels=784, prior_scale=10.0):
        super().__init__()
        self.classes, self.prior_scale = classes, prior_scale
        self.enc = nn.Linear(pixels + classes, hidden)
        self.fc_mu = nn.Linear(hidden, latent)
        self.fc_logvar = nn.Linear(hidden, latent)
        self.prior_mean = nn.Linear(classes, latent, bias=False)
        nn.init.zeros_(self.prior_mean.weight)
        self.dec_hidden = nn.Linear(latent + classes, hidden)
        self.dec_out = nn.Linear(hidden, pixels)

    def prior(self, y):
        return self.prior_mean(y) * self.prior_scale

    def encode(self, x, y):
        h = F.relu(self.enc(torch.cat([x, y], 1)))
        return self.fc_mu(h), self.fc_logvar(h).clamp(-30.0, 20.0)

    def decode_logits(self, z, y):
        return self.dec_out(F.relu(self.dec_hidden(torch.cat([z, y], 1))))

    def loss(self, x, y, eps):
        """Per-image (recon, kl)."""
        mu, logvar = self.encode(x, y)
        d = mu - self.prior(y)
        kl = -0.5 * (1 + logvar - d.pow(2) - logvar.exp()).sum(1)
        z = mu + (0.5 * logvar).exp() * eps
        recon = F.binary_cross_entropy_with_logits(self.decode_logits(z, y), x,
                                                   reduction="none").sum(1)
        return recon, kl


def png(path, pixels, w, h):
    """A grey 8-bit PNG, written with zlib (no imaging library needed)."""
    raw = b"".join(b"\x00" + pixels[y * w:(y + 1) * w] for y in range(h))

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_class_samples(m, dataset, n, latent, out):
    """n samples of every class, z = m_y + eps with eps ~ N(0, I), as 28x28 grey PNGs in
    out/CLASS/NNNN.png (the layout `genlab eval --samples` reads). `m` has `prior(y)` and
    `decode_logits(z, y)`; the classes are drawn in order, each from one `torch.randn(n, latent)`."""
    names = FASHION_CLASSES if dataset == "fashion-mnist" else MNIST_CLASSES
    with torch.no_grad():
        for k, name in enumerate(names):
            os.makedirs(os.path.join(out, name), exist_ok=True)
            y = F.one_hot(torch.full((n,), k), 10).float()
            imgs = torch.sigmoid(m.decode_logits(m.prior(y) + torch.randn(n, latent), y))
            px = (imgs * 255).round().clamp(0, 255).to(torch.uint8).numpy()
            for i in range(n):
                png(os.path.join(out, name, f"{i + 1:04d}.png"), px[i].tobytes(), 28, 28)
    print(f"{n} samples of each class in {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist-10k"])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples-out", help="folder for N samples of every class, DIR/CLASS/NNNN.png")
    ap.add_argument("--n", type=int, default=1000, help="samples per class")
    ap.add_argument("--json", help="write the per-epoch test -ELBO here")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    (xtr, ytr), (xte, yte) = load(a.dataset)
    onehot = lambda y: F.one_hot(y.long(), 10).float()  # noqa: E731
    m = Cvae()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    log = []
    t0 = time.time()
    for epoch in range(1, a.epochs + 1):
        m.train()
        for idx in torch.randperm(len(xtr)).split(128):
            x, y = xtr[idx], onehot(ytr[idx])
            recon, kl = m.loss(x, y, torch.randn(len(idx), 20))
            opt.zero_grad()
            (recon + kl).mean().backward()
            opt.step()
        m.eval()
        with torch.no_grad():
            tot = 0.0
            for idx in torch.arange(len(xte)).split(500):
                recon, kl = m.loss(xte[idx], onehot(yte[idx]), torch.randn(len(idx), 20))
                tot += float((recon + kl).sum())
        log.append({"epoch": epoch, "test_neg_elbo": tot / len(xte)})
        print(f"epoch {epoch:3d}  test -ELBO given y {tot / len(xte):.3f}", flush=True)
    train_secs = time.time() - t0
    if a.samples_out:
        write_class_samples(m, a.dataset, a.n, 20, a.samples_out)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"argv": sys.argv, "torch": torch.__version__, "python": platform.python_version(),
                       "train_secs": train_secs, "epochs": log}, f, indent=1)


if __name__ == "__main__":
    main()
