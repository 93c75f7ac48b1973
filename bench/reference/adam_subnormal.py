#!/usr/bin/env python3
"""PyTorch's Adam leaves first moments stuck in the subnormal range too (issue 22; BENCHMARKS.md,
"Adam's moments stuck below the normal range"): 1000 parameters get a gradient of 0.05 on the
first step and exactly 0 after. Each step's `exp_avg.lerp_(grad, 1 - beta1)` then decays the
first moment by 0.9 until it reaches 4 * 2^-149 (5.6e-45), where the step rounds back to the same
value. There it stays for good, and every later step divides it (`addcdiv_`) as a subnormal.

    python3 bench/reference/adam_subnormal.py
"""
import torch


def main():
    torch.set_num_threads(1)
    p = torch.nn.Parameter(torch.ones(1000))
    opt = torch.optim.Adam([p], lr=1e-3)
    for t in range(2000):
        opt.zero_grad()
        p.grad = torch.full_like(p, 0.05) if t == 0 else torch.zeros_like(p)
        opt.step()
    m = opt.state[p]["exp_avg"]
    tiny = torch.finfo(torch.float32).tiny
    share = ((m != 0) & (m.abs() < tiny)).float().mean().item()
    print(f"torch {torch.__version__}: after 2000 steps exp_avg = {m[0].item():.4g} "
          f"(bits {m[0].view(torch.int32).item()}), subnormal share {share:.2f}")


if __name__ == "__main__":
    main()
