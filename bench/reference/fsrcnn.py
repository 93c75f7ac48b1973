"""FSRCNN in PyTorch, the reference for genlab's super-resolution network.

Two uses:
  --oracle WEIGHTS   load genlab's weights.safetensors (PyTorch layout) into the same
                     architecture and print its output on a fixed input, for genlab's test
                     `models::fsrcnn::tests::forward_matches_pytorch`.
  --make-fixture OUT  write a randomly initialised FSRCNN x3 (seed 0, PReLU slopes drawn too) in
                     genlab's layout to OUT and print its output on the fixed input: the fixture
                     of genlab's test `models::fsrcnn::tests::forward_matches_pytorch`.
  --train-speed      W4 of BENCHMARKS.md: training steps (forward, MSE, backward, Adam) of
                     FSRCNN x2 on uniform-noise 32x32 LR / 64x64 HR patches, batch 32, median
                     patches/s; compare with `genlab bench -w fsrcnn`.
  --speed            time the network's forward pass on a 1000x1000 Y plane (no grad, float32),
                     median of --windows windows of --window-seconds, input megapixels/s;
                     compare with `genlab bench -w fsrcnn-upscale` in the same run.

Usage:
  python3 bench/reference/fsrcnn.py --oracle crates/genlab/models/fsrcnn-x2/weights.safetensors
  python3 bench/reference/fsrcnn.py --speed --threads 2 [--weights crates/genlab/models/fsrcnn-x2/weights.safetensors]
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn


class ConvPrelu(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2)
        self.act = nn.PReLU(cout)

    def forward(self, x):
        return self.act(self.conv(x))


class Fsrcnn(nn.Module):
    """Same module names as genlab's Fsrcnn: layers.N.conv, layers.N.act, deconv."""

    def __init__(self, scale=2, d=56, s=12, m=4):
        super().__init__()
        layers = [ConvPrelu(1, d, 5), ConvPrelu(d, s, 1)]
        layers += [ConvPrelu(s, s, 3) for _ in range(m)]
        layers += [ConvPrelu(s, d, 1)]
        self.layers = nn.ModuleList(layers)
        self.deconv = nn.ConvTranspose2d(d, 1, 9, stride=scale, padding=4, output_padding=scale - 1)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.deconv(x)


def load_genlab(path, scale):
    from safetensors.torch import load_file

    sd = load_file(path)
    sd = {k.replace(".act.alpha", ".act.weight"): v for k, v in sd.items()}
    # FSRCNN(d, s, m) from the tensors: layers.0 has d filters, layers.1 s, and m mapping
    # layers sit between the shrinking and the expanding layer.
    convs = [k for k in sd if k.startswith("layers.") and k.endswith(".conv.weight")]
    d, s = sd["layers.0.conv.weight"].shape[0], sd["layers.1.conv.weight"].shape[0]
    net = Fsrcnn(scale=scale, d=d, s=s, m=len(convs) - 3)
    net.load_state_dict(sd, strict=True)
    return net


def oracle_input():
    # 1 x 1 x 6 x 7, values in [0, 1]: (3 y + 5 x) % 11 / 10.
    y, x = torch.meshgrid(torch.arange(6), torch.arange(7), indexing="ij")
    return (((3 * y + 5 * x) % 11) / 10.0).float().reshape(1, 1, 6, 7)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--oracle", metavar="WEIGHTS")
    p.add_argument("--make-fixture", metavar="OUT")
    p.add_argument("--speed", action="store_true")
    p.add_argument("--train-speed", action="store_true")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--weights", help="--speed: load these weights (speed does not depend on them)")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--side", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="--train-speed: cpu or cuda")
    p.add_argument("--windows", type=int, default=7)
    p.add_argument("--window-seconds", type=float, default=2.0)
    p.add_argument("--json", metavar="OUT")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.make_fixture:
        from safetensors.torch import save_file

        torch.manual_seed(0)
        net = Fsrcnn(scale=3)
        with torch.no_grad():
            for name, t in net.named_parameters():
                if name.endswith("act.weight"):
                    t.uniform_(0.05, 0.5)
                elif name.endswith("bias"):
                    t.uniform_(-0.1, 0.1)
        sd = {k.replace(".act.weight", ".act.alpha"): v.contiguous() for k, v in net.state_dict().items()}
        save_file(sd, a.make_fixture)
        a.oracle, a.scale = a.make_fixture, 3
    if a.oracle:
        net = load_genlab(a.oracle, a.scale).eval()
        with torch.no_grad():
            out = net(oracle_input())
        print("output shape", list(out.shape))
        print("output[0, 0, 0, :8]", [round(v, 6) for v in out[0, 0, 0, :8].tolist()])
        print("output[0, 0, 5, :8]", [round(v, 6) for v in out[0, 0, 5, :8].tolist()])
        print("output sum", round(out.sum().item(), 5))
    if a.train_speed:
        torch.manual_seed(0)
        device = torch.device(a.device)
        net = Fsrcnn(scale=2).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        x = torch.rand(a.batch_size, 1, 32, 32).to(device)
        y = torch.rand(a.batch_size, 1, 64, 64).to(device)

        def step():
            loss = ((net(x) - y) ** 2).mean()
            loss.item()  # waits for the device
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(5):
            step()
        windows = []
        for _ in range(a.windows):
            n, t0 = 0, time.perf_counter()
            while n == 0 or time.perf_counter() - t0 < a.window_seconds:
                step()
                n += 1
            windows.append(n * a.batch_size / (time.perf_counter() - t0))
        med = statistics.median(windows)
        print(f"FSRCNN x2 training, batch {a.batch_size}, {torch.get_num_threads()} threads: "
              f"median {med:.1f} patches/s (windows {min(windows):.1f}..{max(windows):.1f})")
        if a.json:
            with open(a.json, "w") as f:
                import resource
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
                json.dump({"median_patches_per_s": med, "windows": windows, "torch": torch.__version__,
                           "threads": torch.get_num_threads(), "peak_rss_mib": peak}, f, indent=1)
    if a.speed:
        net = load_genlab(a.weights, a.scale) if a.weights else Fsrcnn(scale=a.scale)
        net = net.eval()
        x = torch.rand(1, 1, a.side, a.side)
        with torch.no_grad():
            net(x)
            windows = []
            for _ in range(a.windows):
                n, t0 = 0, time.perf_counter()
                while n == 0 or time.perf_counter() - t0 < a.window_seconds:
                    net(x)
                    n += 1
                windows.append(n * a.side * a.side / 1e6 / (time.perf_counter() - t0))
        med = statistics.median(windows)
        print(f"FSRCNN x{a.scale} forward on {a.side}x{a.side}, {torch.get_num_threads()} threads: "
              f"median {med:.3f} input MP/s (windows {min(windows):.3f}..{max(windows):.3f})")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"median_mp_per_s": med, "windows": windows, "side": a.side,
                           "torch": torch.__version__, "threads": torch.get_num_threads()}, f, indent=1)


if __name__ == "__main__":
    main()
