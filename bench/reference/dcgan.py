"""PyTorch reference for genlab's DCGAN (crates/genlab/configs/fashion-dcgan.toml, crates/genlab/src/models/dcgan.rs).

Same architecture, init, losses and optimiser as genlab, layer for layer:
  G: z(100) -> Linear(100, 128*7*7) -> BN2d(128) -> ReLU
     -> ConvT(128, 64, 4, 2, 1, bias=False) -> BN2d(64) -> ReLU -> ConvT(64, 1, 4, 2, 1, bias=False) -> tanh
  D: Conv(1, 64, 4, 2, 1, bias=False) -> LeakyReLU(0.2) -> Conv(64, 128, 4, 2, 1, bias=False) -> BN2d(128)
     -> LeakyReLU(0.2) -> Linear(128*7*7, 1)
  weights ~ N(0, 0.02), BN scale ~ N(1, 0.02); non-saturating BCE; Adam 2e-4, betas (0.5, 0.999), batch 64;
  one D step (real vs detached G(z)) then one G step on the same G(z) (pytorch/examples dcgan).
The data are read from the same IDX files genlab reads, scaled p/255 then to [-1, 1].

Usage:
  # train with the same budget as `genlab train gan --preset fashion-dcgan --epochs E`, then write
  # N samples as PNGs for `genlab eval --samples DIR --dataset fashion-mnist`:
  python3 bench/reference/dcgan.py --dataset fashion-mnist --epochs 5 --samples-out /tmp/torch-dcgan -n 10000
  # or keep the trained PyTorch weights as a genlab run folder (genlab eval / sample read it):
  python3 bench/reference/dcgan.py --dataset fashion-mnist --epochs 5 --save-run runs/torch-dcgan-fashion
  # the fixture of genlab's test models::dcgan::tests::forward_matches_pytorch:
  python3 bench/reference/dcgan.py --make-fixture crates/genlab/tests/fixtures/dcgan-seed0.safetensors
  # W3 training speed (same windows as `genlab bench -w dcgan`):
  python3 bench/reference/dcgan.py --speed --json speed-dcgan.json
"""
import argparse
import json
import os
import re
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vae import REPO, env_info, load_dataset  # noqa: E402  (same IDX reader and splits)


# Module names follow genlab's parameter paths (generator.fc, generator.fc_norm,
# generator.deconvs.0, generator.norms.0, discriminator.convs.0, ...), so a state dict saved here
# loads into genlab and genlab's weights.safetensors load here.
class Generator(nn.Module):
    def __init__(self, latent=100, ch=(64, 128), out=1):
        super().__init__()
        self.start = ch[1]
        self.fc = nn.Linear(latent, ch[1] * 7 * 7)
        self.fc_norm = nn.BatchNorm2d(ch[1])
        self.deconvs = nn.ModuleList([nn.ConvTranspose2d(ch[1], ch[0], 4, 2, 1, bias=False),
                                      nn.ConvTranspose2d(ch[0], out, 4, 2, 1, bias=False)])
        self.norms = nn.ModuleList([nn.BatchNorm2d(ch[0])])

    def forward(self, z):
        x = F.relu(self.fc_norm(self.fc(z).view(-1, self.start, 7, 7)))  # [b, 128, 7, 7]
        x = F.relu(self.norms[0](self.deconvs[0](x)))  # [b, 64, 14, 14]
        return torch.tanh(self.deconvs[1](x))  # [b, 1, 28, 28]


class Discriminator(nn.Module):
    def __init__(self, ch=(64, 128), inp=1):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(inp, ch[0], 4, 2, 1, bias=False),
                                    nn.Conv2d(ch[0], ch[1], 4, 2, 1, bias=False)])
        self.norms = nn.ModuleList([nn.BatchNorm2d(ch[1])])
        self.fc = nn.Linear(ch[1] * 7 * 7, 1)

    def forward(self, x):
        x = F.leaky_relu(self.convs[0](x), 0.2)  # [b, 64, 14, 14]
        x = F.leaky_relu(self.norms[0](self.convs[1](x)), 0.2)  # [b, 128, 7, 7]
        return self.fc(x.flatten(1))  # [b, 1]


def genlab_state(g, d):
    """Both networks' tensors under genlab's names (no num_batches_tracked)."""
    out = {}
    for prefix, m in (("generator", g), ("discriminator", d)):
        for k, v in m.state_dict().items():
            if not k.endswith("num_batches_tracked"):
                out[f"{prefix}.{k}"] = v.detach().contiguous()
    return out


def save_run(g, d, folder, dataset, epochs):
    """A genlab run folder (config.toml + weights.safetensors) that `genlab eval` / `sample` read."""
    from safetensors.torch import save_file
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(REPO, "configs", "fashion-dcgan.toml")) as f:
        cfg = f.read().replace('dataset = "fashion-mnist"', f'dataset = "{dataset}"')
    cfg = cfg.replace("[model]\n", "[model]\nimage = [1, 28, 28]\n", 1)
    cfg = re.sub(r"(?m)^epochs = \d+$", f"epochs = {epochs}", cfg)
    with open(os.path.join(folder, "config.toml"), "w") as f:
        f.write("# Trained by bench/reference/dcgan.py (PyTorch), not by genlab.\n" + cfg)
    save_file(genlab_state(g, d), os.path.join(folder, "weights.safetensors"))


def make_fixture(path):
    """A small random DCGAN (latent 10, channels 8/16, seed 0; weights ~ N(0, 0.2) so outputs are
    far from 0; non-trivial batch-norm statistics and scales); prints G(z) and D(G(z))."""
    from safetensors.torch import save_file
    torch.manual_seed(0)
    g, d = Generator(latent=10, ch=(8, 16)), Discriminator(ch=(8, 16))
    for m in list(g.modules()) + list(d.modules()):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.2)
            if m.bias is not None:
                nn.init.normal_(m.bias, 0.0, 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.2)
            nn.init.normal_(m.bias, 0.0, 0.1)
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    g.eval()
    d.eval()
    save_file(genlab_state(g, d), path)
    z = (torch.arange(20, dtype=torch.float32).reshape(2, 10) % 7 - 3) / 3  # ((i % 7) - 3) / 3
    with torch.no_grad():
        x = g(z)
        logits = d(x)
    print("G(z)[0, 0, 0, :6] =", [round(v, 6) for v in x[0, 0, 0, :6].tolist()])
    print("G(z)[1, 0, 14, 10:16] =", [round(v, 6) for v in x[1, 0, 14, 10:16].tolist()])
    print("sum G(z) =", round(x.sum().item(), 5))
    print("D(G(z)) =", [round(v, 6) for v in logits.flatten().tolist()])


def dcgan_init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            # genlab's linear bias keeps burn's default init; the bias is tiny either way.
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def make(args):
    g, d = Generator(args.latent), Discriminator()
    g.apply(dcgan_init)
    d.apply(dcgan_init)
    og = torch.optim.Adam(g.parameters(), lr=args.lr, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), lr=args.lr, betas=(0.5, 0.999))
    return g, d, og, od


def step(g, d, og, od, x, z):
    """(1) update D, then (2) update G; returns (d_loss, g_loss)."""
    fake = g(z)
    real_logit, fake_logit = d(x), d(fake.detach())
    d_loss = F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit)) + \
        F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
    od.zero_grad(set_to_none=True)
    d_loss.backward()
    od.step()
    out = d(fake)
    g_loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
    og.zero_grad(set_to_none=True)
    g_loss.backward()
    og.step()
    return d_loss.item(), g_loss.item()


def to_tanh(x):  # [N, 784] in [0, 1] -> [N, 1, 28, 28] in [-1, 1]
    return (x * 2 - 1).view(-1, 1, 28, 28)


def train(args):
    train_x, _ = load_dataset(args.dataset)
    train_x = to_tanh(train_x)
    torch.manual_seed(args.seed)
    g, d, og, od = make(args)
    n = train_x.shape[0]
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        perm = torch.randperm(n)
        dl = gl = 0.0
        steps = 0
        for s in range(0, n, args.batch_size):
            xb = train_x[perm[s:s + args.batch_size]]
            z = torch.randn(xb.shape[0], args.latent)
            a, b = step(g, d, og, od, xb, z)
            dl, gl, steps = dl + a, gl + b, steps + 1
        print(f"epoch {epoch + 1}: D loss {dl / steps:.3f} G loss {gl / steps:.3f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    secs = time.perf_counter() - t0
    if args.save_run:
        save_run(g, d, args.save_run, args.dataset, args.epochs)
    res = {"mode": "train", "dataset": args.dataset, "epochs": args.epochs, "train_seconds": secs,
           "images_per_s": args.epochs * n / secs, "env": env_info(args)}
    if args.samples_out:
        from PIL import Image
        os.makedirs(args.samples_out, exist_ok=True)
        g.eval()  # batch norm with running statistics, as genlab samples
        with torch.no_grad():
            k = 0
            while k < args.n:
                b = min(500, args.n - k)
                imgs = ((g(torch.randn(b, args.latent)) + 1) / 2).clamp(0, 1)
                arr = (imgs.squeeze(1).numpy() * 255).round().astype(np.uint8)
                for i in range(b):
                    Image.fromarray(arr[i], mode="L").save(os.path.join(args.samples_out, f"{k + i:05d}.png"))
                k += b
        res["samples"] = {"dir": args.samples_out, "n": args.n}
    return res


def speed(args):
    torch.manual_seed(args.seed)
    train_x, _ = load_dataset("mnist-10k")
    device = torch.device(args.device)
    train_x = to_tanh(train_x).to(device)
    g, d, og, od = make(args)
    g.to(device)  # in place: the optimizers keep the same parameters
    d.to(device)
    nb = train_x.shape[0] // args.batch_size
    state = {"k": 0}

    def one():
        k = state["k"] % nb
        state["k"] += 1
        xb = train_x[k * args.batch_size:(k + 1) * args.batch_size]
        # step() reads both losses with .item(), which waits for the device.
        step(g, d, og, od, xb, torch.randn(xb.shape[0], args.latent, device=device))

    for _ in range(args.warmup):
        one()
    windows = []
    for w in range(args.windows):
        steps, t0 = 0, time.perf_counter()
        while True:
            one()
            steps += 1
            dt = time.perf_counter() - t0
            if dt >= args.window_seconds:
                break
        windows.append({"steps": steps, "seconds": dt, "images_per_s": steps * args.batch_size / dt})
        print(f"window {w + 1}: {steps} steps in {dt:.3f}s -> {windows[-1]['images_per_s']:8.1f} img/s", flush=True)
    med = statistics.median(x["images_per_s"] for x in windows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"dcgan D+G step, batch {args.batch_size}, {torch.get_num_threads()} threads: median {med:.1f} img/s, "
          f"peak RSS {peak:.1f} MiB", flush=True)
    return {"mode": "speed", "model": "dcgan", "batch_size": args.batch_size, "windows": windows,
            "median_images_per_s": med, "peak_rss_mib": peak, "env": env_info(args)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["fashion-mnist", "mnist-10k"], default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--latent", type=int, default=100)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="--speed: cpu or cuda")
    p.add_argument("--samples-out", metavar="DIR", help="write -n generated PNGs here after training")
    p.add_argument("-n", type=int, default=10000)
    p.add_argument("--save-run", metavar="DIR", help="after training, write a genlab run folder (config + weights)")
    p.add_argument("--make-fixture", metavar="OUT", help="write the test fixture of models::dcgan and print its outputs")
    p.add_argument("--speed", action="store_true")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--windows", type=int, default=7)
    p.add_argument("--window-seconds", type=float, default=2.0)
    p.add_argument("--json", metavar="OUT")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.make_fixture:
        make_fixture(args.make_fixture)
        return
    res = speed(args) if args.speed else train(args)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
