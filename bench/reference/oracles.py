# Oracle numbers for genlab's Rust unit tests (PyTorch, float64). Usage: python3 bench/reference/oracles.py
import json, os, torch, torch.nn.functional as F
torch.set_default_dtype(torch.float64)
T = torch.tensor
out = {"torch": torch.__version__}
# a. BCE-with-logits, summed over the row
lg, tg = T([[-2.0, -0.5, 0.0, 0.5, 3.0, 20.0]]), T([[0.0, 0.2, 0.5, 1.0, 0.9, 1.0]])
out["bce_sum"] = F.binary_cross_entropy_with_logits(lg, tg, reduction="none").sum(dim=1).tolist()
# b. KL(N(mu, exp(logvar)) || N(0, I)) per row
mu, lv = T([[0.5, -1.0, 0.0], [2.0, 0.1, -0.3]]), T([[0.0, 0.5, -1.0], [-2.0, 1.0, 0.3]])
out["kl_rows"] = (-0.5 * torch.sum(1 + lv - mu**2 - lv.exp(), dim=1)).tolist()
# c. ConvTranspose2d(2, 1, k=4, s=2, p=1): weight [in=2, out=1, 4, 4]; output [1,1,6,6] flat
w = torch.arange(32.0).reshape(2, 1, 4, 4) * 0.01 - 0.1
x = torch.arange(18.0).reshape(1, 2, 3, 3) * 0.1 - 0.5
out["conv_transpose2d"] = F.conv_transpose2d(x, w, T([0.05]), stride=2, padding=1).flatten().tolist()
# d. Conv2d(1, 2, k=4, s=2, p=1): weight [out=2, in=1, 4, 4]; output [1,2,3,3] flat
w = torch.arange(32.0).reshape(2, 1, 4, 4) * 0.01 - 0.15
x = torch.arange(36.0).reshape(1, 1, 6, 6) * 0.05 - 0.8
out["conv2d"] = F.conv2d(x, w, T([0.1, -0.2]), stride=2, padding=1).flatten().tolist()
# e. PSNR = 10*log10(1/MSE), images in [0,1]
a = torch.arange(16.0) / 15
b = a.clone(); b[0] = 0.5; b[5] = 0.1
out["psnr"] = (10 * torch.log10(1 / torch.mean((a - b) ** 2))).item()
for k, v in out.items():
    print(k, "=", v if isinstance(v, str) else json.dumps(v))  # repr: shortest exact round-trip
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "oracles.json")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    json.dump(out, f, indent=1); f.write("\n")
