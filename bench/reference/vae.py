#!/usr/bin/env python3
"""PyTorch reference for genlab's VAEs (Bernoulli likelihood on [0,1] pixels).

Models:
  mlp   the classic pytorch/examples VAE: 784-400-(20,20) / 20-400-784
  conv  conv 1-32-64 (k4 s2 p1) -> 2x Linear 3136->16 / Linear 16->3136 -> convT 64-32-1
Loss per image: BCE-with-logits summed over the 784 pixels + KL(q(z|x) || N(0,I)).
Training objective: mean over the batch of that per-image loss; Adam(lr=1e-3), batch 128,
reshuffled every epoch, last partial batch kept (as pytorch/examples' DataLoader).

Datasets (IDX, gzipped, read with gzip+numpy; pixels p/255 as float32, not binarized):
  fashion-mnist  /usr/share/datasets/fashion-mnist/{train,t10k}-images-idx3-ubyte.gz (60k/10k)
  mnist-10k      crates/genlab/data/t10k-images-idx3-ubyte.gz split as genlab does:
                 image i is TEST when i % 10 == 9, else TRAIN (9000/1000, order kept)

Examples:
  python3 bench/reference/vae.py --dataset mnist-10k --model mlp --epochs 10 --json out.json
  python3 bench/reference/vae.py --model conv --speed --json speed-conv.json
"""
import argparse
import gzip
import json
import os
import platform
import resource
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
MNIST10K = os.path.join(REPO, "crates", "genlab", "data", "t10k-images-idx3-ubyte.gz")


def read_idx(path):
    """Read a gzipped (or plain) IDX file into a numpy array of its native shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {dims}, got {arr.size} bytes")
    return arr.reshape(dims)


def to_float(images):
    """uint8 [N,28,28] -> float32 tensor [N,784] in [0,1] (p/255)."""
    return torch.from_numpy(images.reshape(images.shape[0], -1).astype(np.float32) / 255.0)


def load_dataset(name):
    if name == "fashion-mnist":
        train = read_idx(os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz"))
        test = read_idx(os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz"))
    elif name == "mnist-10k":
        allimg = read_idx(MNIST10K)
        idx = np.arange(allimg.shape[0])
        test = allimg[idx % 10 == 9]
        train = allimg[idx % 10 != 9]
    else:
        raise ValueError(name)
    return to_float(train), to_float(test)


class MlpVAE(nn.Module):
    def __init__(self, hidden=400, latent=20):
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, 784)

    def encode(self, x):
        h = F.relu(self.fc1(x))
        return self.fc21(h), self.fc22(h)

    def decode(self, z):
        return self.fc4(F.relu(self.fc3(z)))  # logits [B,784]


class ConvVAE(nn.Module):
    def __init__(self, latent=16):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 4, 2, 1)
        self.c2 = nn.Conv2d(32, 64, 4, 2, 1)
        self.mu = nn.Linear(64 * 7 * 7, latent)
        self.logvar = nn.Linear(64 * 7 * 7, latent)
        self.fc = nn.Linear(latent, 64 * 7 * 7)
        self.d1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
        self.d2 = nn.ConvTranspose2d(32, 1, 4, 2, 1)

    def encode(self, x):
        h = x.view(-1, 1, 28, 28)
        h = F.relu(self.c2(F.relu(self.c1(h))))
        h = h.flatten(1)
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        h = F.relu(self.fc(z)).view(-1, 64, 7, 7)
        h = self.d2(F.relu(self.d1(h)))
        return h.flatten(1)  # logits [B,784]


def per_image_loss(model, x, gen=None):
    """BCE_sum + KL per image, one reparameterised z sample per image. Returns ([B], bce, kl)."""
    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    eps = torch.randn(std.shape, generator=gen, dtype=std.dtype, device=std.device)
    z = mu + eps * std
    logits = model.decode(z)
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
    return bce + kl, bce, kl


@torch.no_grad()
def evaluate(model, test, seed, batch=1000):
    """Test -ELBO in nats/image: mean over all test images of BCE_sum + KL (single z sample)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    tot = bce_t = kl_t = 0.0
    for i in range(0, test.shape[0], batch):
        loss, bce, kl = per_image_loss(model, test[i:i + batch], gen)
        tot += loss.double().sum().item()
        bce_t += bce.double().sum().item()
        kl_t += kl.double().sum().item()
    model.train()
    n = test.shape[0]
    return tot / n, bce_t / n, kl_t / n


def make_model(name):
    return MlpVAE() if name == "mlp" else ConvVAE()


def current_rss_mib():
    """VmRSS of this process now (Linux), MiB; None where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def env_info(args):
    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "loadavg_at_end": list(os.getloadavg()),  # other load on the machine skews timings
        "argv": sys.argv,
    }


def train(args):
    train_x, test_x = load_dataset(args.dataset)
    torch.manual_seed(args.seed)
    model = make_model(args.model)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"{args.model} VAE on {args.dataset}: train {train_x.shape[0]}, test {test_x.shape[0]}, "
          f"params {nparams}, torch {torch.__version__}, threads {torch.get_num_threads()}", flush=True)
    eval_seed = args.seed + 1_000_003
    init = evaluate(model, test_x, eval_seed)
    print(f"epoch  0  test -ELBO {init[0]:10.4f}  (untrained)", flush=True)
    epochs = []
    t_start = time.perf_counter()
    n = train_x.shape[0]
    for ep in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        sum_loss = 0.0
        for i in range(0, n, args.batch_size):
            xb = train_x[perm[i:i + args.batch_size]]
            loss, _, _ = per_image_loss(model, xb)
            obj = loss.mean()
            opt.zero_grad(set_to_none=True)
            obj.backward()
            opt.step()
            sum_loss += loss.detach().double().sum().item()
        t_train = time.perf_counter() - t0
        elbo, bce, kl = evaluate(model, test_x, eval_seed)
        rec = {"epoch": ep, "train_loss": sum_loss / n, "test_neg_elbo": elbo,
               "test_bce": bce, "test_kl": kl, "train_seconds": t_train,
               "images_per_s": n / t_train}
        epochs.append(rec)
        print(f"epoch {ep:2d}  train {rec['train_loss']:10.4f}  test -ELBO {elbo:10.4f}  "
              f"(BCE {bce:9.4f}  KL {kl:7.4f})  {t_train:6.1f}s  {rec['images_per_s']:7.0f} img/s",
              flush=True)
    wall = time.perf_counter() - t_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"wall {wall:.1f}s (training + per-epoch eval), peak RSS {peak:.1f} MiB", flush=True)
    return {
        "mode": "train", "dataset": args.dataset, "model": args.model,
        "n_train": int(train_x.shape[0]), "n_test": int(test_x.shape[0]), "params": nparams,
        "epochs_requested": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "seed": args.seed, "initial_test_neg_elbo": init[0], "epochs": epochs,
        "final_test_neg_elbo": epochs[-1]["test_neg_elbo"] if epochs else init[0],
        "wall_seconds": wall, "peak_rss_mib": peak, "env": env_info(args),
    }


def sync(device):
    """Waits for the device's queued work (CUDA runs asynchronously), so a window's time is real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def speed(args):
    base_rss = current_rss_mib()  # torch imported, no data or model yet
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if args.speed_input == "real":
        train_x, _ = load_dataset(args.dataset)
    else:
        train_x = torch.rand(args.batch_size * 8, 784)
    train_x = train_x.to(device)
    model = make_model(args.model).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    nb = train_x.shape[0] // args.batch_size
    state = {"k": 0}

    def step():
        k = state["k"] % nb
        state["k"] += 1
        xb = train_x[k * args.batch_size:(k + 1) * args.batch_size]
        loss, _, _ = per_image_loss(model, xb)
        opt.zero_grad(set_to_none=True)
        loss.mean().backward()
        opt.step()
        sync(device)

    for _ in range(args.warmup):
        step()
    windows = []
    for w in range(args.windows):
        steps = 0
        t0 = time.perf_counter()
        while True:
            step()
            steps += 1
            dt = time.perf_counter() - t0
            if dt >= args.window_seconds:
                break
        ips = steps * args.batch_size / dt
        windows.append({"steps": steps, "seconds": dt, "images_per_s": ips})
        print(f"window {w + 1}: {steps} steps in {dt:.3f}s -> {ips:8.1f} img/s", flush=True)
    med = statistics.median(x["images_per_s"] for x in windows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"{args.model} train step, batch {args.batch_size}, {torch.get_num_threads()} threads: "
          f"median {med:.1f} img/s, peak RSS {peak:.1f} MiB "
          f"(RSS after importing torch: {base_rss:.1f} MiB)", flush=True)
    return {
        "mode": "speed", "model": args.model, "input": args.speed_input,
        "dataset": args.dataset if args.speed_input == "real" else None,
        "batch_size": args.batch_size, "warmup_steps": args.warmup,
        "window_seconds": args.window_seconds, "windows": windows,
        "median_images_per_s": med, "peak_rss_mib": peak,
        "rss_after_import_mib": base_rss, "env": env_info(args),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["fashion-mnist", "mnist-10k"], default="mnist-10k")
    p.add_argument("--model", choices=["mlp", "conv"], default="mlp")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="--speed: cpu or cuda (each step waits for the device)")
    p.add_argument("--speed", action="store_true", help="time training steps instead of training")
    p.add_argument("--speed-input", choices=["real", "synthetic"], default="real",
                   help="--speed: batches from --dataset's train split, or uniform noise")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--windows", type=int, default=7)
    p.add_argument("--window-seconds", type=float, default=2.0)
    p.add_argument("--json", metavar="OUT")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    res = speed(args) if args.speed else train(args)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
