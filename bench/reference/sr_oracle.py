"""Reference numbers for genlab's super-resolution code, from independent implementations.

- `imresize`: MATLAB's bicubic imresize as ported to NumPy (vectorised; the well-known port of
  MATLAB's `contributions`/`resizeAlongDim`), double precision, optional per-pass uint8 rounding.
- PSNR and SSIM: scikit-image (`peak_signal_noise_ratio`, `structural_similarity` with
  `gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255`, i.e. Wang et
  al.'s 11x11 Gaussian window).
- Y channel: MATLAB's `rgb2ycbcr` (BT.601, studio swing), rounded to uint8 as MATLAB does for uint8.

Usage: python3 bench/reference/sr_oracle.py   (needs numpy, scikit-image, pillow)
Prints the values pasted into genlab's tests (crates/genlab/src/sr/*.rs).
"""
import glob
import os
import sys

import numpy as np


def cubic(x):
    ax = np.abs(x)
    ax2, ax3 = ax ** 2, ax ** 3
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def contributions(in_len, out_len, scale):
    kernel_width = 4.0
    if scale < 1:
        h = lambda x: scale * cubic(scale * x)
        kernel_width = kernel_width / scale
    else:
        h = cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(np.ceil(kernel_width)) + 2
    ind = left[:, None] + np.arange(p)[None, :]
    w = h(u[:, None] - ind)
    w = w / w.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    ind = aux[np.mod(ind.astype(np.int64) - 1, aux.size)]
    keep = np.any(w != 0, axis=0)
    return w[:, keep], ind[:, keep]


def resize_along(a, axis, out_len, round_u8):
    in_len = a.shape[axis]
    w, ind = contributions(in_len, out_len, out_len / in_len)
    a = np.moveaxis(a, axis, 0)
    out = np.einsum("ok,ok...->o...", w, a[ind])
    if round_u8:
        out = np.clip(np.round(out), 0, 255)
    return np.moveaxis(out, 0, axis)


def imresize(img, out_h, out_w, round_u8=False):
    img = img.astype(np.float64)
    sh, sw = out_h / img.shape[0], out_w / img.shape[1]
    order = [(0, out_h), (1, out_w)] if sh <= sw else [(1, out_w), (0, out_h)]
    for axis, n in order:
        if img.shape[axis] != n:
            img = resize_along(img, axis, n, round_u8)
    return img


def rgb2y(rgb):
    rgb = rgb.astype(np.float64)
    y = 16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255
    return np.round(y)


def main():
    from PIL import Image
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    np.set_printoptions(precision=7, suppress=True, linewidth=120)
    src = ((np.arange(24) * 37) % 23).astype(np.float64).reshape(4, 6)
    print("imresize 4x6 -> 2x3:", imresize(src, 2, 3).ravel().tolist())
    print("imresize 4x6 -> 8x12, row 0:", imresize(src, 8, 12)[0].tolist())
    print("imresize 4x6 -> 8x12, sum:", imresize(src, 8, 12).sum())

    # Fixture pair for PSNR/SSIM (formulas, so the Rust test builds the same arrays):
    # a[y, x] = (y * 7 + x * 3) % 200 + 20 * (x % 5 == 0), b = clip(a + ((x * 31 + y * 17) % 13) - 6).
    yy, xx = np.mgrid[0:48, 0:40]
    a = ((yy * 7 + xx * 3) % 200 + 20 * (xx % 5 == 0)).astype(np.float64)
    b = np.clip(a + ((xx * 31 + yy * 17) % 13) - 6, 0, 255)
    for shave in (0, 2):
        aa = a[shave:a.shape[0] - shave, shave:a.shape[1] - shave]
        bb = b[shave:b.shape[0] - shave, shave:b.shape[1] - shave]
        print(f"shave {shave}: psnr {peak_signal_noise_ratio(aa, bb, data_range=255):.6f} "
              f"ssim {structural_similarity(aa, bb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255):.6f}")

    # Set5 x2..x4: MATLAB LR vs our port's LR, and the bicubic baseline on Y.
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../../shared/data/sr")
    for s in (2, 3, 4):
        psnrs, ssims, mism = [], [], []
        for hr_path in sorted(glob.glob(f"{root}/Set5/x{s}/*_HR.png")):
            hr = np.array(Image.open(hr_path).convert("RGB"))
            lr = np.array(Image.open(hr_path.replace("_HR", "_LR")).convert("RGB"))
            h, w = hr.shape[0] // s * s, hr.shape[1] // s * s
            hr = hr[:h, :w]
            mine = np.stack([imresize(hr[..., c], h // s, w // s, round_u8=True) for c in range(3)], -1)
            mism.append(np.abs(mine - lr).max())
            up = np.stack([imresize(lr[..., c], h, w, round_u8=True) for c in range(3)], -1)
            yh, yu = rgb2y(hr)[s:-s, s:-s], rgb2y(up)[s:-s, s:-s]
            psnrs.append(peak_signal_noise_ratio(yh, yu, data_range=255))
            ssims.append(structural_similarity(yh, yu, gaussian_weights=True, sigma=1.5,
                                               use_sample_covariance=False, data_range=255))
        print(f"Set5 x{s}: bicubic Y-PSNR {np.mean(psnrs):.4f} SSIM {np.mean(ssims):.4f}; "
              f"max |our LR - MATLAB LR| per image {mism}")


if __name__ == "__main__":
    main()
