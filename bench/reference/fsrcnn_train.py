"""Trains FSRCNN in PyTorch with genlab's super-resolution recipe, independently of genlab.

The question it answers: does the same recipe (data, patches, loss, Adam) reach the same Set5
Y-PSNR in PyTorch as in genlab? If so, genlab's data pipeline, layers and optimizer are cleared
and a gap to published figures comes from the recipe or the data; if not, genlab has a bug.

Everything here is written from the papers and MATLAB's conventions, sharing no code with
genlab: photos read with Pillow (by content), each also shrunk by 0.9/0.8/0.7/0.6 (MATLAB
bicubic, rounded to uint8), mod-cropped, Y by MATLAB's rgb2ycbcr (rounded), LR = MATLAB bicubic
downscale of Y (not rounded, as the FSRCNN/SRCNN MATLAB training scripts do it), random LR
patches with one of the 8 symmetries, MSE on [0, 1] values, Adam. Validation: Set5's standard
LR PNGs, Y rounded, the network's output rounded and clipped to [0, 255], `scale` pixels
shaved, PSNR per image, mean over images.

Usage (one line per epoch, and --json for the whole curve):
  python3 bench/reference/fsrcnn_train.py --scale 2 --epochs 20 --steps 1000 --batch-size 16 \
      --patch 16 --lr 1e-3 --lr-halve-every 20 [--loss-border 0] [--threads 2]
Needs torch, numpy, pillow.
"""
import argparse
import glob
import json
import os
import time

import numpy as np
import torch
from PIL import Image

from fsrcnn import Fsrcnn
from sr_oracle import imresize, rgb2y

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "../../../shared/data/sr")


def read_rgb(path):
    return np.array(Image.open(path).convert("RGB"))


def training_pairs(folder, scale, rescale, patch):
    pairs = []
    for f in sorted(os.listdir(folder)):
        path = os.path.join(folder, f)
        try:
            rgb = read_rgb(path)
        except Exception:
            continue  # not an image (genlab skips these too)
        for k in rescale:
            h, w = round(rgb.shape[0] * k), round(rgb.shape[1] * k)
            if h // scale < patch or w // scale < patch:
                continue
            img = rgb if k == 1.0 else np.stack(
                [imresize(rgb[..., c], h, w, round_u8=True) for c in range(3)], -1)
            h, w = h // scale * scale, w // scale * scale
            hr = rgb2y(img[:h, :w])
            lr = imresize(hr, h // scale, w // scale)
            pairs.append((hr.astype(np.float32) / 255, lr.astype(np.float32) / 255))
    return pairs


def symmetry(a, sym):
    if sym & 4:
        a = a.T
    if sym & 1:
        a = a[::-1]
    if sym & 2:
        a = a[:, ::-1]
    return a


def draw(pairs, weights, rng, batch, patch, scale, border):
    q, e = patch * scale, border * scale
    xs, ys = [], []
    idx = rng.choice(len(pairs), size=batch, p=weights)
    for i in idx:
        hr, lr = pairs[i]
        y = rng.integers(0, lr.shape[0] - patch + 1)
        x = rng.integers(0, lr.shape[1] - patch + 1)
        sym = rng.integers(0, 8)
        xs.append(symmetry(lr[y:y + patch, x:x + patch], sym))
        hp = symmetry(hr[y * scale:y * scale + q, x * scale:x * scale + q], sym)
        ys.append(hp[e:q - e, e:q - e])
    return (torch.from_numpy(np.ascontiguousarray(np.stack(xs)[:, None])),
            torch.from_numpy(np.ascontiguousarray(np.stack(ys)[:, None])))


def init_like_genlab_docs(net):
    # The FSRCNN paper's init: He-normal convolutions, N(0, 0.001) deconvolution, zero biases,
    # PReLU slopes 0.25 (PyTorch's PReLU default).
    for layer in net.layers:
        c = layer.conv
        std = (2.0 / (c.out_channels * c.kernel_size[0] * c.kernel_size[1])) ** 0.5
        torch.nn.init.normal_(c.weight, 0.0, std)
        torch.nn.init.zeros_(c.bias)
    torch.nn.init.normal_(net.deconv.weight, 0.0, 0.001)
    torch.nn.init.zeros_(net.deconv.bias)


def validation(folder, scale):
    out = []
    for hr_path in sorted(glob.glob(f"{folder}/*_HR.png")):
        hr = read_rgb(hr_path)
        lr = read_rgb(hr_path.replace("_HR", "_LR"))
        h, w = lr.shape[0] * scale, lr.shape[1] * scale
        out.append((rgb2y(hr[:h, :w]), rgb2y(lr)))
    return out


def psnr_y(net, val, scale):
    vals = []
    with torch.no_grad():
        for hr, lr in val:
            x = torch.from_numpy((lr / 255).astype(np.float32))[None, None]
            sr = net(x)[0, 0].numpy().astype(np.float64) * 255
            sr = np.clip(np.round(sr), 0, 255)
            d = (sr - hr)[scale:-scale, scale:-scale]
            vals.append(10 * np.log10(255.0 ** 2 / np.mean(d ** 2)))
    return float(np.mean(vals))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--images", default=os.path.join(SHARED, "train"))
    p.add_argument("--val", default=None)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--patch", type=int, default=16)
    p.add_argument("--loss-border", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-halve-every", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", metavar="OUT")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    pairs = training_pairs(a.images, a.scale, [1.0, 0.9, 0.8, 0.7, 0.6], a.patch)
    weights = np.array([(lr.shape[0] - a.patch + 1) * (lr.shape[1] - a.patch + 1) for _, lr in pairs],
                       dtype=np.float64)
    weights /= weights.sum()
    val = validation(a.val or os.path.join(SHARED, f"Set5/x{a.scale}"), a.scale)
    net = Fsrcnn(scale=a.scale)
    init_like_genlab_docs(net)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    curve = []
    started = time.time()
    print(f"{len(pairs)} training planes, {len(val)} validation images", flush=True)
    for epoch in range(a.epochs):
        lr_now = a.lr * 0.5 ** (epoch // a.lr_halve_every if a.lr_halve_every else 0)
        for g in opt.param_groups:
            g["lr"] = lr_now
        total = 0.0
        for _ in range(a.steps):
            x, y = draw(pairs, weights, rng, a.batch_size, a.patch, a.scale, a.loss_border)
            out = net(x)
            e = (out.shape[-1] - y.shape[-1]) // 2
            if e:
                out = out[..., e:-e, e:-e]
            loss = torch.mean((out - y) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        rec = {"epoch": epoch + 1, "train_mse": total / a.steps, "val_psnr": psnr_y(net, val, a.scale),
               "elapsed_secs": time.time() - started}
        curve.append(rec)
        print(json.dumps(rec), flush=True)
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"args": vars(a), "curve": curve}, f, indent=1)


if __name__ == "__main__":
    main()
