"""Noise schedules for hot diffusion, in the post's notation (UDM.md §2).

x_t = ᾱ_t x_0 + β̄_t ε with β̄_t = sqrt(1 - ᾱ_t²); in DDPM-paper terms ᾱ_t = sqrt(alphas_cumprod[t-1]).
Index 0 is the data itself: ᾱ_0 = 1, β̄_0 = 0, so a schedule holds T + 1 values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

ScheduleName = Literal["linear", "cosine"]
SCHEDULES: tuple[str, ...] = ("linear", "cosine")
Spacing = Literal["even", "quadratic", "log-snr"]
SPACINGS: tuple[str, ...] = ("even", "quadratic", "log-snr")


@dataclass(frozen=True)
class Schedule:
    """ᾱ_t for t = 0..T (shape (T+1,), float64 so products of ratios stay exact enough)."""

    abar: torch.Tensor

    @property
    def T(self) -> int:
        return self.abar.numel() - 1

    @property
    def bbar(self) -> torch.Tensor:
        return (1.0 - self.abar**2).clamp_min(0.0).sqrt()

    @property
    def betas(self) -> torch.Tensor:
        """β_t = 1 − ᾱ_t² / ᾱ_{t−1}² for t = 1..T (shape (T,)): diffusers' `trained_betas`."""
        return 1.0 - (self.abar[1:] / self.abar[:-1]) ** 2

    def coefficients(self, t: int, s: int) -> tuple[float, float, float, float]:
        """(ᾱ_t, β̄_t, ᾱ_s, β̄_s) as floats for a step t → s (s < t)."""
        a, b = self.abar, self.bbar
        return float(a[t]), float(b[t]), float(a[s]), float(b[s])


def _from_betas(betas: torch.Tensor) -> Schedule:
    """Build ᾱ from DDPM-paper betas (variances): ᾱ_t = sqrt(prod_{i≤t} (1 - beta_i))."""
    abar = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1.0 - betas, 0).sqrt()])
    return Schedule(abar=abar)


def linear(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:
    """DDPM's linear schedule (Ho et al. 2020), scaled so any T spans the same noise range."""
    scale = 1000.0 / T
    if scale * beta_end >= 1:
        raise ValueError(f"the linear schedule needs T > {int(1000 * beta_end)}, got {T}")
    return _from_betas(torch.linspace(scale * beta_start, scale * beta_end, T, dtype=torch.float64))


def cosine(T: int = 1000, offset: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """Nichol & Dhariwal (2021) cosine schedule, betas capped at `max_beta` (diffusers' squaredcos_cap_v2)."""

    def f(u: float) -> float:
        return math.cos((u + offset) / (1 + offset) * math.pi / 2) ** 2

    betas = [min(1 - f((i + 1) / T) / f(i / T), max_beta) for i in range(T)]
    return _from_betas(torch.tensor(betas, dtype=torch.float64))


def make(name: str, T: int = 1000) -> Schedule:
    if name == "linear":
        return linear(T)
    if name == "cosine":
        return cosine(T)
    raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}")


def respace(T: int, K: int) -> list[int]:
    """K increasing timesteps 1 = τ_1 < … < τ_K = T, evenly spread: τ_k = 1 + round((k-1)(T-1)/(K-1)).

    This is Bao et al.'s even trajectory (diffusers' "linspace" spacing, shifted by one): the walk
    down ends with the step 1 → 0, where x̂_0 is the posterior mean at the smallest noise level, so
    few-step sampling does not collapse each sample onto E[x_0 | x_{T/K}]. K = 1 is the single jump T → 0.
    """
    if not 1 <= K <= T:
        raise ValueError(f"steps must be between 1 and T={T}, got {K}")
    if K == 1:
        return [T]
    return [1 + int(v) for v in np.linspace(0, T - 1, K).round()]  # numpy's rounding, as diffusers


def spaced(schedule: Schedule, K: int, spacing: str = "even") -> list[int]:
    """K increasing timesteps ending at T, by `spacing`:

    - "even": `respace`, the same gap everywhere;
    - "quadratic": τ_k ∝ k² (Song et al.'s DDIM grid), more steps at low noise where detail is made;
    - "log-snr": even in log(ᾱ_t² / β̄_t²), the steps ODE solvers such as DPM-Solver take.

    Each starts at t = 1 (the last step is 1 → 0) and keeps the K timesteps distinct.
    """
    if spacing not in SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; valid: {', '.join(SPACINGS)}")
    T = schedule.T
    if spacing == "even" or K == 1:
        return respace(T, K)
    if not 1 <= K <= T:
        raise ValueError(f"steps must be between 1 and T={T}, got {K}")
    u = np.linspace(0.0, 1.0, K)
    if spacing == "quadratic":
        ts = 1 + u**2 * (T - 1)
    else:  # log-snr: λ_t = log(ᾱ_t² / β̄_t²) for t = 1..T, falling with t
        a, b = schedule.abar.clamp_min(1e-30), schedule.bbar.clamp_min(1e-30)
        lam = (2 * (a.log() - b.log())).numpy()[1:]
        ts = 1 + np.interp(-(lam[0] + u * (lam[-1] - lam[0])), -lam, np.arange(T))
    out = [int(v) for v in np.round(ts)]
    for i in range(1, K):  # distinct, increasing
        out[i] = max(out[i], out[i - 1] + 1)
    out[-1] = T
    for i in range(K - 2, -1, -1):  # and within 1..T
        out[i] = min(out[i], out[i + 1] - 1)
    return out
