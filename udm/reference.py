"""The reference schedulers a user would otherwise pick, on udm's own networks, as udm step records:
diffusers' DDPM / DDIM / DPM-Solver++ (2M, 3M, SDE) / UniPC / DEIS over a hot ε-model, AmusedScheduler (MaskGIT) over the mask BERT and
DiscreteDDIMScheduler (D3PM) over the edit BERT. Each is a loop over a diffusers scheduler's `step` that
yields `core.Step(t, x_t, x̂_0, x_s)` in udm's time convention (diffusers' timestep td is udm's td + 1).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

import torch

from . import core
from .device import LOADING
from .schedule import Schedule

HOT: tuple[str, ...] = (
    "diffusers-ddpm",
    "diffusers-ddim",
    "diffusers-dpm-solver++",
    "diffusers-dpm-solver++-3m",
    "diffusers-dpm-solver++-sde",
    "diffusers-unipc",
    "diffusers-deis",
    "diffusers-heun",
)
SECOND_ORDER: tuple[str, ...] = ("diffusers-heun",)  # two network evaluations per step but the last
MASK = "diffusers-amused"
EDIT: tuple[str, ...] = ("diffusers-discrete-ddim", "diffusers-discrete-ddim+loo")


def diffusers_scheduler(name: str, schedule: Schedule, steps: int):
    """A diffusers scheduler on our ᾱ (its betas), "trailing" spacing so the first step is at t = T."""
    with LOADING:
        from diffusers import (
            DDIMScheduler,
            DDPMScheduler,
            DEISMultistepScheduler,
            DPMSolverMultistepScheduler,
            HeunDiscreteScheduler,
            UniPCMultistepScheduler,
        )

    common = dict(
        num_train_timesteps=schedule.T, trained_betas=schedule.betas.float().numpy(), timestep_spacing="trailing"
    )
    if name == "diffusers-ddpm":
        sched = DDPMScheduler(**common, clip_sample=False, variance_type="fixed_small")
    elif name == "diffusers-ddim":
        sched = DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True)
    elif name == "diffusers-dpm-solver++":
        sched = DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2)
    elif name == "diffusers-dpm-solver++-3m":  # unconditional pixel-space sampling: order 3 pays
        sched = DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=3)
    elif name == "diffusers-dpm-solver++-sde":  # stochastic; draws its noise from the run's generator
        sched = DPMSolverMultistepScheduler(**common, algorithm_type="sde-dpmsolver++", solver_order=2)
    elif name == "diffusers-unipc":  # UniPC's bh2 variant, order 3 without guidance (its paper's choice)
        sched = UniPCMultistepScheduler(**common, solver_order=3, solver_type="bh2")
    elif name == "diffusers-deis":
        sched = DEISMultistepScheduler(**common, solver_order=3)
    elif name == "diffusers-heun":  # Karras et al.'s 2nd-order Heun on the model's own σ_t (no Karras σs)
        sched = HeunDiscreteScheduler(**common)
    else:
        raise ValueError(f"unknown diffusers scheduler {name!r}; valid: {', '.join(HOT)}")
    sched.set_timesteps(steps)
    return sched


def diffusers_steps(model, name: str, x_T: torch.Tensor, steps: int, generator: torch.Generator, eta: float = 0.0):
    """A diffusers scheduler's loop over a hot model (`.schedule`, `.posterior.eps(x, t)`) as udm step
    records (x̂_0 from ε as in udm)."""
    if name in SECOND_ORDER:
        yield from heun_steps(model, x_T, steps)
        return
    sched = diffusers_scheduler(name, model.schedule, steps)
    ts = [int(t) for t in sched.timesteps]
    noisy = "generator" in inspect.signature(sched.step).parameters  # (UniPC and DEIS draw no noise)
    x = x_T
    for i, td in enumerate(ts):
        t = td + 1
        with torch.no_grad():
            eps = model.posterior.eps(x, t)
            a, b, _, _ = model.schedule.coefficients(t, 0)
            x0_hat = (x - b * eps) / a
            kw = {"eta": eta} if name == "diffusers-ddim" else {}
            if noisy:
                kw["generator"] = generator
            x_s = sched.step(eps, td, x, **kw).prev_sample
        if name == "diffusers-ddim":  # DDIM steps to td − T // K, which is off the grid where K ∤ T
            s = max(td - model.schedule.T // steps, -1) + 1
        else:
            s = ts[i + 1] + 1 if i + 1 < len(ts) else 0
        yield core.Step(index=i, t=t, s=s, x_t=x, x0_hat=x0_hat, x_s=x_s)
        x = x_s


def evaluations(name: str, steps: int) -> int:
    """Network evaluations of a run of `steps` steps."""
    return 2 * steps - 1 if name in SECOND_ORDER else steps


def heun_steps(model, x_T: torch.Tensor, steps: int) -> Iterator[core.Step]:
    """diffusers' HeunDiscreteScheduler as udm step records, one per full step t → s. It walks
    x / ᾱ_t (variance exploding, σ_t = β̄_t / ᾱ_t) and evaluates the network twice per step (at t, then at s
    on the Euler guess) except the last, an Euler step to σ = 0. Records are in udm's scale x_t; x̂_0 is
    the guess at x_t."""
    sched = diffusers_scheduler("diffusers-heun", model.schedule, steps)
    tds, sigmas = [float(t) for t in sched.timesteps], sched.sigmas  # calls: τ_0, τ_1, τ_1, …; σ then 0
    if any(td != int(td) for td in tds):
        raise ValueError("Heun's timesteps must lie on the training grid")

    def vp(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return x / (sigma**2 + 1) ** 0.5

    x, record = x_T * (sigmas[0] ** 2 + 1) ** 0.5, {}
    for i, td in enumerate(tds):
        t = int(td) + 1
        first = sched.state_in_first_order
        with torch.no_grad():
            out = sched.step(model.posterior.eps(vp(x, sigmas[i]), t), td, x)
        if first:
            record = dict(index=i // 2, t=t, x_t=vp(x, sigmas[i]), x0_hat=out.pred_original_sample)
        if not first or i == len(tds) - 1:  # a full step done; the call after the last lands on σ = 0
            yield core.Step(s=t if not first else 0, x_s=vp(out.prev_sample, sigmas[i + 1]), **record)
        x = out.prev_sample


def amused_steps(
    logits: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mask: int, steps: int, generator: torch.Generator
) -> Iterator[core.Step]:
    """diffusers' AmusedScheduler (MaskGIT: draw every hidden token, keep the most confident, re-mask the
    rest on a cosine schedule) from the all-[MASK] tokens `x` (n, l), `logits(x)` (n, l, V) the mask BERT's;
    t counts the hidden positions."""
    with LOADING:
        from diffusers import AmusedScheduler

    sched = AmusedScheduler(mask_token_id=mask)
    sched.set_timesteps(steps)
    for i, ts in enumerate(sched.timesteps):
        with torch.no_grad():
            out = sched.step(logits(x), ts, x, generator=generator)
        t = int((x == mask).sum(1).max())
        s = int((out.prev_sample == mask).sum(1).max())
        yield core.Step(index=i, t=t, s=s, x_t=x, x0_hat=out.pred_original_sample, x_s=out.prev_sample)
        x = out.prev_sample


def discrete_ddim_steps(
    logits: Callable[[torch.Tensor, int], torch.Tensor],
    x: torch.Tensor,
    steps: int,
    corrector: bool,
    generator: torch.Generator,
) -> Iterator[core.Step]:
    """diffusers' DiscreteDDIMScheduler (D3PM uniform corruption; with `corrector`, one leave-one-out Gibbs
    sweep after each step) from the random tokens `x` (n, l); `logits(x, t)` is the edit BERT's v1 answer.

    Where its assumptions do not fit: D3PM corrupts each position independently with probability 1 − α
    (a binomial number of positions), while the edit model is told an exact count t of replaced positions
    (v1: any replacement token, the uniform kernel). The model is asked at t = round(l (1 − α)), at least 1.
    """
    with LOADING:
        from diffusers import DiscreteDDIMScheduler

    sched = DiscreteDDIMScheduler(corrector_steps=int(corrector), corrector_k=1)
    sched.set_timesteps(steps)
    length = x.shape[1]

    def count(alpha: float) -> int:
        return min(length, max(1, round(length * (1 - alpha))))

    for i in range(steps):
        with torch.no_grad():
            out = sched.step(logits(x, count(i / steps)), i, x, temperature=1.0, generator=generator)
            x_s = out.prev_sample
            if corrector and i + 1 < steps:
                x_s = sched.step_correct(logits(x_s, count((i + 1) / steps)), i, x_s, generator=generator).prev_sample
        s = 0 if i + 1 == steps else count((i + 1) / steps)
        yield core.Step(index=i, t=count(i / steps), s=s, x_t=x, x0_hat=out.sampled_tokens, x_s=x_s)
        x = x_s
