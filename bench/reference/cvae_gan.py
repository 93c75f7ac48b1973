#!/usr/bin/env python3
"""PyTorch reference for genlab's conditional VAE-GAN (crates/genlab/configs/{mnist,fashion}-cvae-gan.toml).

The cVAE of crates/genlab/src/models/cvae.rs with `[model.adversarial]`, trained as
crates/genlab/src/train/cvae_gan.rs trains it, written from that description and sharing no
code with genlab:
  encoder   [x, 10 constant planes of one-hot y] (11x28x28) -> Conv 64 (k4 s2 p1) ReLU
            -> Conv 128 (k4 s2 p1) ReLU -> flatten 6272 -> (mu, logvar) 16 each, logvar
            clamped to [-30, 20]
  prior     p(z|y) = N(m_y, I), m_y = 10 * W y with W (16x10, no bias) starting at zero
  decoder   [z (16), one-hot y] -> Linear 6272 -> BN -> ReLU -> [128, 7, 7] -> ConvT 64
            (k4 s2 p1) -> BN -> ReLU -> ConvT 1 (k4 s2 p1): Bernoulli logits
  D         DCGAN's: Conv 64 (k4 s2 p1, no bias) LReLU(0.2) -> Conv 128 (no bias) -> BN
            -> LReLU -> flatten 6272 (phi) -> Linear 1, plus the projection embed(y) . phi
            (Miyato & Koyama); weights ~ N(0, 0.02), BN scale ~ N(1, 0.02)
Losses for a batch (x in [0, 1], shown to D as 2x - 1), Larsen et al.'s recipe:
  Dis_l     D's conv-2 output before BN; recon = |Dis_l(x_rec) - Dis_l(x)|^2 / (2 s^2), s^2 the
            real batch's feature variance (mean over features of the per-feature batch variance)
  KL        to N(m_y, I); z = mu + exp(logvar / 2) eps
  encoder   <- 8 KL + recon (the code's gradient is scaled by 1 / gamma on its way back)
  decoder   <- gamma recon + 10 GAN, gamma = 1e-2; GAN = non-saturating loss of D on
            [Dec(z.detach(), y), Dec(m_y.detach() + z_p, y)]
  D         <- BCE(D(x, y) twice, 1) + BCE(D(fakes.detach(), y), 0), means
All three from the same D before its update, one optimizer step each; Adam(2e-4, (0.5, 0.999)),
batch 64, reshuffled every epoch, last partial batch kept. Encoder, decoder and prior use
PyTorch's default init. Data as bench/reference/vae.py reads it (p/255, not binarized).

--samples-out DIR writes N samples of every class (z = m_y + eps, the decoder's BN on its
running statistics) as DIR/CLASS/NNNN.png for `genlab eval --samples DIR --dataset D`.

Example (BENCHMARKS.md, "The conditional VAE-GAN"):
  python3 bench/reference/cvae_gan.py --dataset fashion-mnist --epochs 5 --samples-out /tmp/ref \
      --json bench/reference/results/cvae-gan-fashion.json
  genlab eval --samples /tmp/ref --dataset fashion-mnist
"""
import argparse
import json
import os
import platform
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cvae import load, write_class_samples  # noqa: E402
from dcgan import dcgan_init  # noqa: E402  (weights N(0, 0.02), BN scale N(1, 0.02))

LATENT, BETA, GAMMA, WEIGHT, PRIOR_SCALE = 16, 8.0, 1e-2, 10.0, 10.0


class Cvae(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1 + classes, 64, 4, 2, 1), nn.ReLU(),
                                 nn.Conv2d(64, 128, 4, 2, 1), nn.ReLU(), nn.Flatten())
        self.fc_mu = nn.Linear(6272, LATENT)
        self.fc_logvar = nn.Linear(6272, LATENT)
        self.prior_mean = nn.Linear(classes, LATENT, bias=False)
        nn.init.zeros_(self.prior_mean.weight)
        self.fc = nn.Linear(LATENT + classes, 6272)
        self.bn0 = nn.BatchNorm2d(128)
        self.up1 = nn.ConvTranspose2d(128, 64, 4, 2, 1)
        self.bn1 = nn.BatchNorm2d(64)
        self.up2 = nn.ConvTranspose2d(64, 1, 4, 2, 1)
        for bn in (self.bn0, self.bn1):
            dcgan_init(bn)

    def prior(self, y):
        return self.prior_mean(y) * PRIOR_SCALE

    def encode(self, x, y):
        planes = y[:, :, None, None].expand(-1, -1, 28, 28)
        h = self.enc(torch.cat([x, planes], 1))
        return self.fc_mu(h), self.fc_logvar(h).clamp(-30.0, 20.0)

    def decode_logits(self, z, y):
        h = F.relu(self.bn0(self.fc(torch.cat([z, y], 1)).view(-1, 128, 7, 7)))
        return self.up2(F.relu(self.bn1(self.up1(h))))


class Disc(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.c1 = nn.Conv2d(1, 64, 4, 2, 1, bias=False)
        self.c2 = nn.Conv2d(64, 128, 4, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(128)
        self.out = nn.Linear(6272, 1)
        self.embed = nn.Linear(classes, 6272, bias=False)
        self.apply(dcgan_init)

    def forward(self, x, y):
        """(logit [b, 1], conv-2 raw output [b, 6272])."""
        f = self.c2(F.leaky_relu(self.c1(x), 0.2))
        phi = F.leaky_relu(self.bn(f), 0.2).flatten(1)
        return self.out(phi) + (self.embed(y) * phi).sum(1, keepdim=True), f.flatten(1)


def step(m, d, x, y, eps, z_p):
    """The losses of one batch: (vae_loss + WEIGHT adv for the VAE's parameters, d_loss, logs)."""
    x_t = 2 * x - 1
    real_logit, f_real = d(x_t, y)
    mu, logvar = m.encode(x, y)
    dm = mu - m.prior(y)
    kl = -0.5 * (1 + logvar - dm.pow(2) - logvar.exp()).sum(1)
    z = mu + (0.5 * logvar).exp() * eps
    z_scaled = z.detach() + (z - z.detach()) / GAMMA
    logits = m.decode_logits(z_scaled, y)
    f_real = f_real.detach()
    s2 = f_real.var(0, unbiased=False).mean().clamp_min(1e-12)
    _, f_rec = d(2 * torch.sigmoid(logits) - 1, y)
    recon = (f_rec - f_real).pow(2).sum(1) / (2 * s2)
    vae_loss = BETA * kl.mean() + GAMMA * recon.mean()
    z_prior = m.prior(y).detach() + z_p
    y2 = torch.cat([y, y])
    fakes = 2 * torch.sigmoid(m.decode_logits(torch.cat([z.detach(), z_prior]), y2)) - 1
    fake_logit, _ = d(fakes.detach(), y2)
    real2 = torch.cat([real_logit, real_logit])
    d_loss = (F.binary_cross_entropy_with_logits(real2, torch.ones_like(real2), reduction="none")
              + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit),
                                                   reduction="none")).mean()
    adv_logit, _ = d(fakes, y2)
    adv = F.binary_cross_entropy_with_logits(adv_logit, torch.ones_like(adv_logit))
    return vae_loss + WEIGHT * adv, d_loss, (d_loss.item(), adv.item())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist-10k"])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples-out", help="folder for N samples of every class, DIR/CLASS/NNNN.png")
    ap.add_argument("--n", type=int, default=1000, help="samples per class")
    ap.add_argument("--json", help="write the per-epoch losses here")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    (xtr, ytr), _ = load(a.dataset)
    xtr = xtr.view(-1, 1, 28, 28)
    onehot = lambda y: F.one_hot(y.long(), 10).float()  # noqa: E731
    m, d = Cvae(), Disc()
    opt_m = torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    log, t0 = [], time.time()
    for epoch in range(1, a.epochs + 1):
        m.train()
        d.train()
        sums, n = [0.0, 0.0], 0
        for idx in torch.randperm(len(xtr)).split(64):
            b = len(idx)
            vae_total, d_loss, (dl, gl) = step(m, d, xtr[idx], onehot(ytr[idx]),
                                               torch.randn(b, LATENT), torch.randn(b, LATENT))
            # Each network the gradient of its own loss, all from the same D (as one backward
            # pass through genlab's routing gives them).
            g_m = torch.autograd.grad(vae_total, list(m.parameters()), retain_graph=True,
                                      allow_unused=True)
            g_d = torch.autograd.grad(d_loss, list(d.parameters()), allow_unused=True)
            for p, g in zip(m.parameters(), g_m):
                p.grad = g
            for p, g in zip(d.parameters(), g_d):
                p.grad = g
            opt_m.step()
            opt_d.step()
            sums[0] += dl * b
            sums[1] += gl * b
            n += b
        log.append({"epoch": epoch, "d_loss": sums[0] / n, "g_loss": sums[1] / n,
                    "secs": time.time() - t0})
        print(f"epoch {epoch:3d}  D {sums[0] / n:.3f}  G {sums[1] / n:.3f}  "
              f"{n / (time.time() - t0) * epoch:.0f} img/s", flush=True)
    train_secs = time.time() - t0
    if a.samples_out:
        m.eval()  # the decoder's batch norm on its running statistics
        write_class_samples(m, a.dataset, a.n, LATENT, a.samples_out)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"argv": sys.argv, "torch": torch.__version__, "python": platform.python_version(),
                       "train_secs": train_secs, "epochs": log}, f, indent=1)


if __name__ == "__main__":
    main()
