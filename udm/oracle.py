"""Exact models: the closed-form ε-predictor for Gaussian-mixture data (UDM.md §2, correctness anchors).

For x_0 ~ Σ_k π_k N(μ_k, Σ_k), the forward marginal is x_t ~ Σ_k π_k N(ᾱ_t μ_k, C_k) with
C_k = ᾱ_t² Σ_k + β̄_t² I, and E[x_0 | x_t] = Σ_k w_k(x_t) (μ_k + ᾱ_t Σ_k C_k^{-1}(x_t - ᾱ_t μ_k)),
w_k the posterior responsibilities; then ε*(x_t, t) = (x_t - ᾱ_t E[x_0 | x_t]) / β̄_t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .data import Mixture
from .schedule import Schedule


@dataclass(frozen=True)
class MixtureEps:
    """ε*(x_t, t) for mixture data: a drop-in for a trained network (x (B, d), t (B,) → (B, d))."""

    mixture: Mixture
    schedule: Schedule

    def posterior_mean(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = x_t.double()
        d = x.shape[1]
        times, which = t.unique(return_inverse=True)  # one set of d×d solves per distinct t
        a = self.schedule.abar.to(x.device)[times].view(-1, 1, 1, 1)  # (U, 1, 1, 1)
        b = self.schedule.bbar.to(x.device)[times].view(-1, 1, 1, 1)
        mu = self.mixture.means.to(x.device)  # (K, d)
        cov = self.mixture.covs.to(x.device)  # (K, d, d)
        C = a**2 * cov + b**2 * torch.eye(d, dtype=x.dtype, device=x.device)  # (U, K, d, d)
        C_inv, logdet = torch.linalg.inv(C)[which], torch.linalg.slogdet(C).logabsdet[which]  # (B, K, …)
        a = a[which, :, 0]  # (B, 1, 1)
        diff = x[:, None, :] - a * mu  # x_t - ᾱ μ_k  (B, K, d)
        sol = (C_inv @ diff.unsqueeze(-1)).squeeze(-1)  # C_k^{-1}(x_t - ᾱ μ_k)
        logw = self.mixture.weights.to(x.device).log() - 0.5 * (diff * sol).sum(-1) - 0.5 * logdet  # (B, K)
        cond = mu + a * (cov @ sol.unsqueeze(-1)).squeeze(-1)  # E[x_0 | x_t, k]  (B, K, d)
        return (logw.softmax(1).unsqueeze(-1) * cond).sum(1)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.schedule.abar.to(x_t.device)[t].view(-1, 1)
        b = self.schedule.bbar.to(x_t.device)[t].view(-1, 1)
        return ((x_t.double() - a * self.posterior_mean(x_t, t)) / b).to(x_t.dtype)
