"""Cold diffusion (UDM.md §3): deterministic degradations F_t, a restoration network G_t, and the naive
and improved reverse rules, with an optional forward noise σ (x_t = F_t(x_0) + σ ε).

Images are (B, C, H, W) in model space [-1, 1]; t is an int in 0..T and F_0 is the identity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import torch
import torch.nn.functional as nnf

from . import core
from .device import randn

DegradationName = Literal["blur", "mask", "pixelate", "fade"]
SamplerName = Literal["naive", "improved"]
SAMPLERS: tuple[str, ...] = ("naive", "improved")
MASK_VALUE = 0.0  # hidden pixels are mid-grey, so the hidden region stays visible on black and white digits
BLUR_RANGE = (0.5, 40.0)  # Gaussian std in pixels at t = 1 and t = T; at 40 a 28-px image is its mean to 1e-4
Restorer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t (B, …), t (B,) long) → x̂_0 (B, …)


def check(name: str, valid: tuple[str, ...], what: str) -> str:
    if name not in valid:
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(valid)}")
    return name


# ---------------------------------------------------------------- 1. forward: x_t = F_t(x_0) + σ ε
@lru_cache(maxsize=8)
def _dct(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix (n, n): its basis diagonalises blur with mirrored borders."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None]
    m = torch.cos(math.pi * (i + 0.5) * k / n) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m.float()


def _pool(x: torch.Tensor, r: int) -> torch.Tensor:
    """Average over an r×r grid of cells, drawn back at full size."""
    return nnf.interpolate(nnf.adaptive_avg_pool2d(x, r), size=x.shape[-2:], mode="nearest")


@dataclass(frozen=True)
class Degradation:
    """F_t for t = 0..T. Blur, pixelate and fade end at the image mean (one number per channel); mask
    ends at a blank image. `final` gives the numbers F_T keeps, `expand` draws them back as an image."""

    name: DegradationName
    T: int = 50

    def __post_init__(self) -> None:
        check(self.name, DEGRADATIONS, "degradation")
        if self.T < 1:
            raise ValueError(f"T must be ≥ 1, got {self.T}")

    def __call__(self, x0: torch.Tensor, t: int) -> torch.Tensor:
        if not 0 <= t <= self.T:
            raise ValueError(f"t must be between 0 and T={self.T}, got {t}")
        return x0 if t == 0 else DEGRADE[self.name](x0, t, self.T)

    def final(self, x0: torch.Tensor) -> torch.Tensor:
        """What survives at t = T: (B, C) channel means, or (B, 0) for mask."""
        if self.name == "mask":
            return x0.new_zeros(x0.shape[0], 0)
        return x0.mean(dim=(-2, -1))

    def expand(self, z: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """F_T's image (B, *shape) from `final`'s numbers."""
        if self.name == "mask":
            return torch.full((z.shape[0], *shape), MASK_VALUE, device=z.device)
        return z[:, :, None, None].expand(z.shape[0], *shape).clone()


@lru_cache(maxsize=8)
def _centre_order(h: int, w: int) -> torch.Tensor:
    """(h, w) rank of each pixel by distance from the centre (ties broken by angle): masking order."""
    y, x = torch.meshgrid(torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij")
    key = (x**2 + y**2) * 10 + torch.atan2(y, x)  # angle in (−π, π]: breaks ties, never reorders radii
    return key.flatten().argsort().argsort().view(h, w)


def _pixel_sizes(n: int) -> list[int]:
    sizes = [n]
    while sizes[-1] > 1:
        sizes.append(max(1, sizes[-1] // 2))
    return sizes


def _per_example(t: int | torch.Tensor, x0: torch.Tensor) -> int | torch.Tensor:
    """t as it broadcasts against x_0 (B, C, H, W): an int stays, a (B,) tensor becomes (B, 1, 1, 1) in
    float64 (what arithmetic on an int gives, before it meets the image)."""
    return t if isinstance(t, int) else t.to(x0.device, torch.float64).view(-1, 1, 1, 1)


def _blur(x0: torch.Tensor, t: int | torch.Tensor, T: int) -> torch.Tensor:
    """Gaussian blur of std growing geometrically over BLUR_RANGE, exact in the DCT basis (mirrored borders)."""
    lo, hi = BLUR_RANGE
    t = _per_example(t, x0)
    scale = lo * (hi / lo) ** ((t - 1) / max(1, T - 1)) * math.pi  # std·π: a number, or (B, 1, 1, 1)
    h, w = x0.shape[-2:]
    dh, dw = _dct(h).to(x0.device), _dct(w).to(x0.device)
    if isinstance(scale, torch.Tensor):
        scale = scale.to(x0.dtype)
        fh = torch.exp(-0.5 * (scale * torch.arange(h, device=x0.device).view(1, 1, h, 1) / h) ** 2)
        fw = torch.exp(-0.5 * (scale * torch.arange(w, device=x0.device).view(1, 1, 1, w) / w) ** 2)
    else:
        fh = torch.exp(-0.5 * (scale * torch.arange(h, device=x0.device) / h) ** 2)[:, None]
        fw = torch.exp(-0.5 * (scale * torch.arange(w, device=x0.device) / w) ** 2)[None]
    spec = dh @ x0 @ dw.T
    return dh.T @ (spec * fh * fw) @ dw


def _mask(x0: torch.Tensor, t: int | torch.Tensor, T: int) -> torch.Tensor:
    """Hide the pixels nearest the centre first, a growing disc (hidden pixels are MASK_VALUE)."""
    order = _centre_order(*x0.shape[-2:]).to(x0.device)
    t = _per_example(t, x0)
    count = round(t / T * order.numel()) if isinstance(t, int) else torch.round(t / T * order.numel())
    hidden = (order < count).to(x0.dtype)
    return x0 * (1 - hidden) + MASK_VALUE * hidden


def _pixelate(x0: torch.Tensor, t: int, T: int) -> torch.Tensor:
    """Blend between successive resolutions H, H/2, H/4, …, 1."""
    sizes = _pixel_sizes(x0.shape[-1])
    level = t / T * (len(sizes) - 1)
    k = min(int(level), len(sizes) - 2)
    a = level - k
    return (1 - a) * _pool(x0, sizes[k]) + a * _pool(x0, sizes[k + 1])


def _fade(x0: torch.Tensor, t: int | torch.Tensor, T: int) -> torch.Tensor:
    """Straight towards the image mean."""
    u = _per_example(t, x0) / T
    u = u.to(x0.dtype) if isinstance(u, torch.Tensor) else u
    mean = x0.mean(dim=(-2, -1), keepdim=True)
    return (1 - u) * x0 + u * mean


# F_t for 1 ≤ t ≤ T, one small function per degradation: (x_0 (B, C, H, W), t, T) → F_t(x_0)
DEGRADE: dict[str, Callable[[torch.Tensor, int, int], torch.Tensor]] = {
    "blur": _blur,
    "mask": _mask,
    "pixelate": _pixelate,
    "fade": _fade,
}
DEGRADATIONS: tuple[str, ...] = tuple(DEGRADE)
BATCHED = frozenset({"blur", "mask", "fade"})  # those that also take a (B,) tensor of t's (1 ≤ t ≤ T) at once


@dataclass(frozen=True)
class ColdForward:
    """x_t = F_t(x_0) + σ_t ε with σ_t = σ for t ≥ 1 and σ_0 = 0 (data is clean); invertible in ε
    (`core.Invertible`) where σ > 0."""

    degradation: Degradation
    sigma: float = 0.0

    @property
    def T(self) -> int:
        return self.degradation.T

    def sigma_at(self, t: int) -> float:
        return self.sigma if t > 0 else 0.0

    def sample(self, x0: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t for an int t, or for a (B,) tensor of per-example timesteps (training batches)."""
        if isinstance(t, int):
            return self.degradation(x0, t) + self.sigma_at(t) * noise
        if self.degradation.name in BATCHED and bool((t >= 1).all()):  # a training batch, in one go
            return DEGRADE[self.degradation.name](x0, t, self.T) + self.sigma * noise
        return core.per_timestep(self.sample, x0, t, noise)

    def draw(self, x0: torch.Tensor, t: int | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.sample(x0, t, randn(x0.shape, generator).to(x0.device))

    def noise_from(self, x0: torch.Tensor, x_t: torch.Tensor, t: int) -> torch.Tensor:
        """ε = (x_t − F_t(x_0)) / σ_t (σ > 0 and t ≥ 1)."""
        if self.sigma_at(t) == 0:
            raise ValueError("x_t = F_t(x_0) holds no noise to recover where σ_t = 0")
        return (x_t - self.degradation(x0, t)) / self.sigma


def loss(restorer: Callable, forwards: Sequence[ColdForward], x0: torch.Tensor) -> torch.Tensor:
    """The L1 restoration loss ‖x_0 − G_t(F_t(x_0) + σ ε, v)‖₁ (mean per pixel), each example with a random
    variant v (one of `forwards`, told to the restorer by its index) and t ~ U{1..T}."""
    n, T = x0.shape[0], forwards[0].T
    v = torch.randint(0, len(forwards), (n,), device=x0.device)
    t = torch.randint(1, T + 1, (n,), device=x0.device)
    x_t, noise = torch.empty_like(x0), torch.randn_like(x0)
    for k, fwd in enumerate(forwards):
        i = v == k
        if i.any():
            x_t[i] = fwd.sample(x0[i], t[i], noise[i])
    return (restorer(x_t, t, v) - x0).abs().mean()


@dataclass(frozen=True)
class FinalPrior:
    """Where generation starts: a diagonal Gaussian mixture over what F_T keeps of training images
    (`Degradation.final`, e.g. the mean grey level), drawn back as x_T = F_T-image + σ ε (+ extra noise,
    the original paper's trick). Mask keeps nothing: its x_T is the blank image plus the noise."""

    degradation: Degradation
    weights: torch.Tensor  # (K,)
    means: torch.Tensor  # (K, k)
    stds: torch.Tensor  # (K, k)

    @classmethod
    def fit(cls, degradation: Degradation, x0: torch.Tensor, components: int = 5) -> FinalPrior:
        z = degradation.final(x0).double().cpu()
        if z.shape[1] == 0:
            return cls(degradation, torch.ones(1), torch.zeros(1, 0), torch.zeros(1, 0))
        from sklearn.mixture import GaussianMixture

        gm = GaussianMixture(components, covariance_type="diag", random_state=0).fit(z.numpy())
        return cls(
            degradation,
            torch.as_tensor(gm.weights_).float(),
            torch.as_tensor(gm.means_).float(),
            torch.as_tensor(gm.covariances_).sqrt().float(),
        )

    def sample(self, n: int, shape: tuple[int, ...], noise: float, generator: torch.Generator) -> torch.Tensor:
        """(n, *shape) starting images: F_T-images of mixture draws plus `noise`·ε."""
        dev = generator.device
        k = torch.multinomial(self.weights.to(dev), n, replacement=True, generator=generator)
        z = self.means.to(dev)[k] + self.stds.to(dev)[k] * randn((n, self.means.shape[1]), generator)
        x = self.degradation.expand(z, shape).to(dev)
        return x + noise * randn(x.shape, generator) if noise > 0 else x


# ---------------------------------------------------------------- 2. posterior: x̂_0 = G_t(x_t)
@dataclass(frozen=True)
class RestorerPosterior:
    """q(x_0|x_t) ∝ exp(−‖x_0 − G_t(x_t)‖₁ / τ) with τ → 0: its mode G_t(x_t) is x̂_0."""

    restorer: Restorer

    def __call__(self, x_t: torch.Tensor, t: int) -> torch.Tensor:
        return self.restorer(x_t, torch.full((x_t.shape[0],), t, device=x_t.device, dtype=torch.long))


# ---------------------------------------------------------------- 3. reverse
@dataclass(frozen=True)
class ColdReverse:
    """x_s = F_s(x̂_0) + σ_s (√(1 − f²) ε̂ + f ε'), ε̂ = (x_t − F_t(x̂_0)) / σ_t (UDM.md §1, §3).

    f = 1 is the **naive** rule (fresh noise only; σ = 0: x_s = F_s(x̂_0)); f = 0 the **improved** one
    (reuse the noise). Since σ_s / σ_t = 1 for s ≥ 1, σ_s ε̂ is the whole residual x_t − F_t(x̂_0), and
    at σ = 0 the rule is its σ → 0⁺ limit: x_s = x_t + F_s(x̂_0) − F_t(x̂_0), the post's improved step.

    The last step (s = 0) returns x̂_0 at every σ: data is clean (σ_0 = 0), so no residual carries to x_0.
    (The post's formula run to s = 0 gives x_0 = x_1 + x̂_0 − F_1(x̂_0): at σ > 0 that x_0 would keep the
    noise σ ε, and at σ = 0 it is not the σ → 0⁺ limit of the rule. One rule holds for every σ.)
    """

    forward: ColdForward
    fresh: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.fresh <= 1.0:
            raise ValueError(f"fresh-noise share must be in [0, 1], got {self.fresh}")

    def predict_x0(
        self, posterior: RestorerPosterior, x_t: torch.Tensor, t: int, s: int, generator: torch.Generator
    ) -> torch.Tensor:
        return posterior(x_t, t)

    def step(self, x_t: torch.Tensor, x0_hat: torch.Tensor, t: int, s: int, generator: torch.Generator) -> torch.Tensor:
        f, fwd = self.forward.degradation, self.forward
        out = f(x0_hat, s)
        if s == 0:  # σ_0 = 0: x_0 = F_0(x̂_0) = x̂_0
            return out
        if fwd.sigma == 0:
            if self.fresh < 1:  # the σ → 0⁺ limit: the residual carries over whole
                out = out + math.sqrt(1 - self.fresh**2) * (x_t - f(x0_hat, t))
            return out
        eps_hat = fwd.noise_from(x0_hat, x_t, t)
        eps_new = randn(x_t.shape, generator).to(x_t.device) if self.fresh > 0 else 0.0
        return out + fwd.sigma_at(s) * (math.sqrt(1 - self.fresh**2) * eps_hat + self.fresh * eps_new)


def make_reverse(sampler: str, forward: ColdForward, fresh: float | None = None) -> ColdReverse:
    """naive: f = 1; improved: f = `fresh` (default 0)."""
    check(sampler, SAMPLERS, "sampler")
    if sampler == "naive":
        if fresh not in (None, 1.0):
            raise ValueError("the naive sampler always draws fresh noise; 'fresh' applies to improved only")
        return ColdReverse(forward, 1.0)
    return ColdReverse(forward, 0.0 if fresh is None else fresh)


def plan(
    posterior: RestorerPosterior, reverse: ColdReverse, x_t: torch.Tensor, t_start: int, generator: torch.Generator
) -> core.Plan:
    """A run from x_t at strength `t_start` down every t to 0."""
    if not 1 <= t_start <= reverse.forward.T:
        raise ValueError(f"t must be between 1 and T={reverse.forward.T}, got {t_start}")
    return core.Plan(posterior, reverse, x_t, tuple(range(1, t_start + 1)), generator)
