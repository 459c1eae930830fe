"""Hot diffusion (UDM.md §2): Gaussian forward process, ε-parametrised posterior, and the general
reverse step that covers DDPM, DDIM (η) and Analytic-DPM, for any K ≤ T respaced steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from . import core
from .device import randn
from .schedule import Schedule, spaced

SamplerName = Literal["ddpm", "ddim", "analytic-ddpm", "analytic-ddim"]
SAMPLERS: tuple[str, ...] = ("ddpm", "ddim", "analytic-ddpm", "analytic-ddim")
EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t (B, …), t (B,) long) → ε (B, …)


# ---------------------------------------------------------------- 1. forward: x_t = ᾱ_t x_0 + β̄_t ε
@dataclass(frozen=True)
class GaussianForward:
    schedule: Schedule

    @property
    def T(self) -> int:
        return self.schedule.T

    def sample(self, x0: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """q_sample; `t` an int or a (B,) tensor of per-example timesteps."""
        a, b = _coef(self.schedule, t, x0)
        return a * x0 + b * noise

    def draw(self, x0: torch.Tensor, t: int | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.sample(x0, t, randn(x0.shape, generator).to(x0.device))

    def noise_from(self, x0: torch.Tensor, x_t: torch.Tensor, t: int) -> torch.Tensor:
        """F_t^{-1}: ε = (x_t - ᾱ_t x_0) / β̄_t."""
        a, b, _, _ = self.schedule.coefficients(t, 0)
        return (x_t - a * x0) / b


def _coef(schedule: Schedule, t: int | torch.Tensor, like: torch.Tensor):
    """(ᾱ_t, β̄_t) as floats for an int t, or as (B, 1, …) tensors broadcasting against `like`."""
    if isinstance(t, int):
        return float(schedule.abar[t]), float(schedule.bbar[t])
    view = (-1,) + (1,) * (like.dim() - 1)
    a = schedule.abar.to(like.device)[t].to(like.dtype).view(view)
    b = schedule.bbar.to(like.device)[t].to(like.dtype).view(view)
    return a, b


def loss(
    eps_model: EpsModel, forward: GaussianForward, x0: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The ε-prediction loss ‖ε - ε_θ(ᾱ_t x_0 + β̄_t ε, t)‖² (weights dropped), t ~ U{1..T}."""
    t = torch.randint(1, forward.T + 1, (x0.shape[0],), device=x0.device, generator=generator)
    eps = torch.randn(x0.shape, device=x0.device, generator=generator)
    return (eps_model(forward.sample(x0, t, eps), t) - eps).pow(2).mean()


# ---------------------------------------------------------------- 2. posterior: q(x_0|x_t) = N(μ̄, σ̄² I)
@dataclass(frozen=True)
class EpsPosterior:
    """μ̄(x_t) = (x_t - β̄_t ε_θ(x_t, t)) / ᾱ_t, the mean of q(x_0 | x_t); σ̄ is the sampler's choice."""

    eps_model: EpsModel
    schedule: Schedule

    def eps(self, x_t: torch.Tensor, t: int) -> torch.Tensor:
        return self.eps_model(x_t, torch.full((x_t.shape[0],), t, device=x_t.device, dtype=torch.long))

    def __call__(self, x_t: torch.Tensor, t: int) -> torch.Tensor:
        a, b, _, _ = self.schedule.coefficients(t, 0)
        return (x_t - b * self.eps(x_t, t)) / a


@dataclass(frozen=True)
class VEps:
    """An ε-model from a v-model (v = ᾱ_t ε − β̄_t x_0, the distilled student's output): ε = β̄_t x_t + ᾱ_t v,
    so that EpsPosterior's x̂_0 = (x_t − β̄_t ε) / ᾱ_t is ᾱ_t x_t − β̄_t v."""

    v_model: EpsModel
    schedule: Schedule

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, b = _coef(self.schedule, t, x_t)
        return b * x_t + a * self.v_model(x_t, t)


# ---------------------------------------------------------------- 3. reverse: the general step
@dataclass(frozen=True)
class HotReverse:
    """The post's general reverse step for t → s:

        x̂_0 = μ̄(x_t) + σ̄_t ε''                                                   (1)
        x_s = ᾱ_s x̂_0 + sqrt(β̄_s² - σ_t²) · (x_t - ᾱ_t x̂_0) / β̄_t + σ_t ε'      (2)

    i.e. x_s = F_s(x̂_0, sqrt(1 - σ̃²) F_t^{-1}(x̂_0, x_t) + σ̃ ε') with σ̃ = σ_t / β̄_s (UDM.md §1).
    σ_t = η β̄_s β_{t|s} / β̄_t (η = 1: DDPM, η = 0: DDIM). σ̄_t = 0, or Analytic-DPM's optimum
    σ̄_t² = (β̄_t² / ᾱ_t²)(1 - E‖ε_θ‖²/d), clipped to [0, Var[x_0]] (total variance bounds the
    posterior's); the last step (s = 0) uses σ̄ = 0 and returns the posterior mean, as DDPM does.
    """

    schedule: Schedule
    eta: float = 1.0
    eps_sq: torch.Tensor | None = None  # (T+1,) E‖ε_θ(x_t, t)‖²/d; None → σ̄ = 0
    x0_var: float = 1.0  # mean per-dimension variance of the data: the cap on σ̄²

    def __post_init__(self) -> None:
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {self.eta}")
        if self.eps_sq is not None and self.eps_sq.numel() != self.schedule.T + 1:
            raise ValueError(f"eps_sq needs T+1={self.schedule.T + 1} values, got {self.eps_sq.numel()}")

    def sigma(self, t: int, s: int) -> float:
        a_t, b_t, a_s, b_s = self.schedule.coefficients(t, s)
        beta_ts = (1 - (a_t / a_s) ** 2) ** 0.5  # β_{t|s}
        return min(self.eta * b_s * beta_ts / b_t, b_s)

    def sigma_bar(self, t: int, s: int) -> float:
        if self.eps_sq is None or s == 0:
            return 0.0
        a_t, b_t, _, _ = self.schedule.coefficients(t, s)
        var = (b_t / a_t) ** 2 * (1.0 - float(self.eps_sq[t]))
        return min(max(var, 0.0), self.x0_var) ** 0.5

    def predict_x0(
        self, posterior: EpsPosterior, x_t: torch.Tensor, t: int, s: int, generator: torch.Generator
    ) -> torch.Tensor:
        mean = posterior(x_t, t)
        sb = self.sigma_bar(t, s)
        return mean + sb * randn(mean.shape, generator) if sb > 0 else mean  # (1)

    def step(self, x_t: torch.Tensor, x0_hat: torch.Tensor, t: int, s: int, generator: torch.Generator) -> torch.Tensor:
        a_t, b_t, a_s, b_s = self.schedule.coefficients(t, s)
        sigma = self.sigma(t, s)
        x_s = a_s * x0_hat + (max(b_s**2 - sigma**2, 0.0)) ** 0.5 * (x_t - a_t * x0_hat) / b_t  # (2)
        return x_s + sigma * randn(x_s.shape, generator) if sigma > 0 else x_s


def sampler_eta(name: str, eta: float | None = None) -> float:
    """Check a sampler's name and η; return the η it runs with (DDPM: 1; DDIM: 0 unless given)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; valid: {', '.join(SAMPLERS)}")
    if eta is None:
        return 1.0 if name.endswith("ddpm") else 0.0
    if name.endswith("ddpm") and eta != 1.0:
        raise ValueError("eta applies to ddim and analytic-ddim; ddpm is eta = 1")
    return float(eta)


def make_reverse(
    name: str, schedule: Schedule, *, eta: float | None = None, stats: dict[str, torch.Tensor] | None = None
) -> HotReverse:
    """A named sampler: ddpm, ddim (η, default 0), analytic-ddpm, analytic-ddim (need `stats`)."""
    eta = sampler_eta(name, eta)
    if not name.startswith("analytic"):
        return HotReverse(schedule, eta=eta)
    if not stats or not {"eps_sq", "x0_var"} <= set(stats):
        raise ValueError(f"{name} needs the model's E‖ε‖²/d and Var[x_0] statistics (stats.safetensors)")
    return HotReverse(schedule, eta=eta, eps_sq=stats["eps_sq"].double(), x0_var=float(stats["x0_var"]))


def plan(
    posterior: EpsPosterior,
    reverse: HotReverse,
    shape: Sequence[int],
    steps: int,
    generator: torch.Generator,
    spacing: str = "even",
) -> core.Plan:
    """A run from x_T ~ N(0, I) of `shape` (B, …) through `steps` timesteps placed by `spacing`
    (`schedule.spaced`)."""
    x_T = randn(shape, generator)
    return core.Plan(posterior, reverse, x_T, tuple(spaced(reverse.schedule, steps, spacing)), generator)


# ---------------------------------------------------------------- Analytic-DPM statistics
@torch.no_grad()
def estimate_eps_sq(
    eps_model: EpsModel,
    forward: GaussianForward,
    x0: torch.Tensor,
    *,
    grid: int | Sequence[int] = 100,
    per_t: int = 256,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Monte-Carlo E‖ε_θ(x_t, t)‖²/d over the forward marginal, on `grid` timesteps spread over 1..T
    (or the given list), linearly interpolated to every t; `per_t` draws of x_0 from `x0` (N, …) each.

    Returns {"eps_sq": (T+1,), "x0_var": ()} for `HotReverse`.
    """
    T, device = forward.T, x0.device
    ts = (
        torch.linspace(1, T, min(grid, T)).round().long()
        if isinstance(grid, int)
        else torch.tensor(sorted(grid), dtype=torch.long)
    ).unique()
    values = []
    for t in ts.tolist():
        idx = torch.randint(0, len(x0), (per_t,), generator=generator, device=generator.device).to(device)
        batch = x0[idx]
        noise = randn(batch.shape, generator).to(device)
        eps = eps_model(forward.sample(batch, t, noise), torch.full((per_t,), t, dtype=torch.long, device=device))
        # ‖ε‖²/d has known mean 1, so it serves as a control variate: the optimal coefficient removes most
        # of the Monte-Carlo noise where ε_θ ≈ ε (large t, where σ̄_t² = (β̄_t/ᾱ_t)²(1 - E‖ε_θ‖²/d) is
        # most sensitive) and none of the precision where ‖ε_θ‖² is small (small t).
        a = eps.double().pow(2).flatten(1).mean(1)
        u = noise.double().pow(2).flatten(1).mean(1)
        c = ((a - a.mean()) * (u - u.mean())).mean() / (u.var(unbiased=False) + 1e-30)
        values.append((a.mean() - c * (u.mean() - 1.0)).item())
    eps_sq = torch.from_numpy(np.interp(np.arange(T + 1), ts.numpy(), values))
    x0_var = x0.double().flatten(1).var(0).mean()
    return {"eps_sq": eps_sq, "x0_var": x0_var}
