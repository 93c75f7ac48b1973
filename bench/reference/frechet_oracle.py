# Oracle for genlab's Fréchet distance and precision/recall (crates/genlab/src/metrics/frechet.rs).
# Writes crates/genlab/tests/fixtures/frechet.json: two float32 feature sets (300 x 8 and 250 x 8,
# different means and covariances) and the values NumPy/SciPy give for them: FD, precision/recall
# (k = 3) and density/coverage (k = 5).
# Usage: python3 bench/reference/frechet_oracle.py   (needs numpy, scipy)
import json, os
import numpy as np, scipy.linalg

rng = np.random.default_rng(7)
d = 8
a = rng.standard_normal((300, d)).astype(np.float32)
mix = (np.eye(d) + 0.3 * rng.standard_normal((d, d))).astype(np.float32)
b = (rng.standard_normal((250, d)).astype(np.float32) @ mix + 0.5).astype(np.float32)

def fd(x, y):  # pytorch-fid's calculate_frechet_distance
    x, y = x.astype(np.float64), y.astype(np.float64)
    mu1, s1 = x.mean(0), np.cov(x, rowvar=False)
    mu2, s2 = y.mean(0), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))

def sqd(x, y):
    x, y = x.astype(np.float64), y.astype(np.float64)
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)

def pr(real, fake, k=3):  # Kynkäänniemi et al. 2019, brute force
    r_real = np.partition(sqd(real, real), k, axis=1)[:, k]
    r_fake = np.partition(sqd(fake, fake), k, axis=1)[:, k]
    precision = (sqd(fake, real) <= r_real[None, :]).any(1).mean()
    recall = (sqd(real, fake) <= r_fake[None, :]).any(1).mean()
    return float(precision), float(recall)

def dc(real, fake, k=5):  # Naeem et al. 2020, as prdc.compute_prdc (strict <, own point excluded)
    r_real = np.partition(sqd(real, real), k, axis=1)[:, k]
    inside = sqd(real, fake) < r_real[:, None]  # [real, fake]
    density = inside.sum() / (k * fake.shape[0])
    coverage = inside.any(1).mean()
    return float(density), float(coverage)

p, r = pr(a, b)
den, cov = dc(a, b)
out = {"dim": d, "a": a.flatten().tolist(), "b": b.flatten().tolist(), "fd": fd(a, b), "precision": p, "recall": r,
       "density": den, "coverage": cov}
print("fd", out["fd"], "precision", p, "recall", r, "density", den, "coverage", cov)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "genlab", "tests", "fixtures", "frechet.json")
with open(path, "w") as f:
    json.dump(out, f)
