"""The PyTorch reference for bench/pack_speed.sh: one shuffled epoch over an image folder with
Pillow and a torch DataLoader (num_workers=2), each image opened, converted to RGB, resized and
centre-cropped to SIDE x SIDE as genlab's packer does, as uint8 tensors. Prints a line (and
with --json, JSON): images/s over the epoch and the time to the first batch.

usage: python3 folder_loader.py DIR [SIDE] [--workers 2] [--batch 128] [--json]
"""
import argparse
import json
import os
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("side", type=int, nargs="?", default=64)
ap.add_argument("--workers", type=int, default=2)
ap.add_argument("--batch", type=int, default=128)
ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
a = ap.parse_args()


class Folder(Dataset):
    def __init__(self, root, side):
        self.files = sorted(
            os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".jpg")
        )
        self.tf = v2.Compose([v2.PILToTensor(), v2.Resize(side, antialias=True), v2.CenterCrop(side)])

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.files[i]) as im:
            return self.tf(im.convert("RGB"))


torch.set_num_threads(1)
t0 = time.perf_counter()
ds = Folder(a.dir, a.side)
dl = DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers)
n, first = 0, None
for x in dl:
    if first is None:
        first = time.perf_counter() - t0
    n += x.shape[0]
dt = time.perf_counter() - t0
print(
    f"PyTorch DataLoader(num_workers={a.workers}) + Pillow: {n} images in {dt:.1f} s = "
    f"{n / dt:.0f} images/s; first batch after {first:.2f} s"
)
if a.json:
    print(json.dumps({"images": n, "seconds": dt, "images_per_s": n / dt, "first_batch_s": first}))
