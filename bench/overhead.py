"""Sampling overhead: udm's DDIM loop against a loop over diffusers' DDIMScheduler, on the same shipped
MNIST UNet, the same x_T and the same 50 timesteps (diffusers' "trailing" spacing), batch 64 —
alternated in one run, best of `--repeats` each. Also checks that both give the same samples.

    python -m bench.overhead [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch
from diffusers import DDIMScheduler

from udm import core, hot
from udm import hot_pipeline as pipeline
from udm.device import make_generator


def _scheduler(model: pipeline.HotModel, steps: int) -> DDIMScheduler:
    betas = 1 - (model.schedule.abar[1:] / model.schedule.abar[:-1]) ** 2  # DDPM-paper betas of our ᾱ
    sched = DDIMScheduler(
        num_train_timesteps=model.schedule.T,
        trained_betas=betas.float().numpy(),
        clip_sample=False,
        set_alpha_to_one=True,
        timestep_spacing="trailing",
    )
    sched.set_timesteps(steps)
    return sched


def udm_ddim(model: pipeline.HotModel, x_T: torch.Tensor, steps: int) -> torch.Tensor:
    taus = sorted(int(t) + 1 for t in _scheduler(model, steps).timesteps)  # our t = diffusers' t + 1
    rev = hot.make_reverse("ddim", model.schedule)
    return core.last(core.sample(model.posterior, rev, x_T, taus, make_generator(0, x_T.device))).x_s


@torch.no_grad()
def diffusers_ddim(model: pipeline.HotModel, x_T: torch.Tensor, steps: int) -> torch.Tensor:
    sched, net, x = _scheduler(model, steps), model.posterior.eps_model, x_T
    for td in sched.timesteps:
        eps = net(x, torch.full((x.shape[0],), int(td) + 1, dtype=torch.long, device=x.device))
        x = sched.step(eps, td, x).prev_sample
    return x


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    model = pipeline.hot_model("mnist28")
    device = next(model.posterior.eps_model.parameters()).device
    x_T = torch.randn(args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(0)).to(device)
    a, b = udm_ddim(model, x_T, args.steps), diffusers_ddim(model, x_T, args.steps)
    print(f"max |udm - diffusers| over the final samples: {(a - b).abs().max().item():.2e}")
    times = {"udm": [], "diffusers": []}
    for _ in range(args.repeats):
        for name, fn in (("udm", udm_ddim), ("diffusers", diffusers_ddim)):
            start = time.perf_counter()
            fn(model, x_T, args.steps)
            times[name].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in times.items()}
    print(f"| loop ({device}) | best of {args.repeats} (s) |\n| --- | --- |")
    for k, v in best.items():
        print(f"| {k} DDIM, {args.steps} steps, batch {args.batch} | {v:.2f} |")
    print(f"ratio udm / diffusers: {best['udm'] / best['diffusers']:.3f}")


if __name__ == "__main__":
    main()
