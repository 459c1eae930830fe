"""Cold diffusion, ready to run over the shipped restorer: generation from a fully degraded start, or
restoration of held-out digits degraded to strength t. Validated requests, models cached on first use,
and the registry entry `ColdProcess`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import torch

from . import checkpoint, cold, core, data
from .device import make_generator, randn
from .pipeline import MAX_SAMPLES, Models, checkpoint_root, device_name
from .process import Choice, Process, check_range, check_seed, config_with, register

MAX_START_NOISE = 1.0


@dataclass(frozen=True)
class ColdRequest:
    """One cold run. `restore_from=None` generates from x_T ~ the fitted prior (+ `start_noise`·ε);
    an int t restores the first n held-out digits (from index `first`) degraded to strength t."""

    degradation: cold.DegradationName = "blur"
    sampler: cold.SamplerName = "improved"
    sigma: float = 0.0
    n: int = 16
    seed: int = 0
    start_noise: float = 0.0
    fresh: float | None = None  # improved only: share of fresh noise (0 = reuse the noise entirely)
    restore_from: int | None = None
    first: int = 0
    data: str = "mnist28"

    def __post_init__(self) -> None:
        data.check_name(self.data, data.IMAGES)
        cold.make_reverse(self.sampler, cold.ColdForward(cold.Degradation(self.degradation)), self.fresh)
        check_range(self.n, "number of samples", 1, MAX_SAMPLES["images"])
        check_seed(self.seed)
        check_range(self.sigma, "forward noise σ", 0.0, 1.0)
        check_range(self.start_noise, "x_T noise", 0.0, MAX_START_NOISE)
        if self.restore_from is not None and self.restore_from < 1:
            raise ValueError(f"restore-from t must be ≥ 1, got {self.restore_from}")
        if self.first < 0:
            raise ValueError(f"first held-out index must be ≥ 0, got {self.first}")


@dataclass(frozen=True)
class ColdModel:
    restorer: torch.nn.Module
    T: int
    variants: tuple[tuple[str, float], ...]

    def variant(self, degradation: str, sigma: float) -> int:
        for k, (name, s) in enumerate(self.variants):
            if name == degradation and abs(s - sigma) < 1e-9:
                return k
        have = ", ".join(f"{n} σ={s:g}" for n, s in self.variants)
        raise ValueError(f"no trained restorer for {degradation} with σ = {sigma:g}; trained: {have}")

    def sigmas(self, degradation: str) -> list[float]:
        return [s for n, s in self.variants if n == degradation]

    def posterior(self, degradation: str, sigma: float) -> cold.RestorerPosterior:
        return cold.RestorerPosterior(VariantRestorer(self.restorer, self.variant(degradation, sigma)))


@dataclass(frozen=True)
class VariantRestorer:
    """The one restorer network told which variant (degradation, σ) it restores, by its class label; two
    are equal when they are one network and one variant (so runs of both can share a batch)."""

    net: torch.nn.Module
    variant: int

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(x_t, t, torch.full_like(t, self.variant))


def _load(name: str, device: str) -> ColdModel:
    net, cfg, _ = checkpoint.load(checkpoint_root() / f"cold-{name}", torch.device(device))
    return ColdModel(net, cfg["T"], _variants(cfg))


_models: Models[ColdModel] = Models(_load)


def cold_model(name: str = "mnist28", device: str | None = None) -> ColdModel:
    """The shipped restorer for dataset `name`, loaded once per device."""
    return _models(name, device=device)


def _variants(cfg: dict) -> tuple[tuple[str, float], ...]:
    return tuple((v["degradation"], float(v["sigma"])) for v in cfg["variants"])


def cold_variants(name: str = "mnist28") -> tuple[tuple[str, float], ...]:
    """The (degradation, σ) pairs of the shipped restorer, from its config (nothing is loaded)."""
    return _variants(checkpoint.load_config(checkpoint_root() / f"cold-{name}"))


def cold_T(name: str = "mnist28") -> int:
    """The number of steps T of the shipped restorer, from its config (nothing is loaded)."""
    return int(checkpoint.load_config(checkpoint_root() / f"cold-{name}")["T"])


@lru_cache(maxsize=None)
def prior(name: str, degradation: str, T: int) -> cold.FinalPrior:
    """The x_T mixture of a degradation, fitted to the training split (a fraction of a second)."""
    return cold.FinalPrior.fit(cold.Degradation(degradation, T), data.training_set(name))


def forward_of(req: ColdRequest, T: int) -> cold.ColdForward:
    return cold.ColdForward(cold.Degradation(req.degradation, T), req.sigma)


def held_out(name: str, first: int, n: int) -> torch.Tensor:
    """Held-out digits first..first+n-1 in model space."""
    x, _ = data.images(name, "test")
    if first + n > len(x):
        raise ValueError(f"there are {len(x)} held-out digits; asked for {first}..{first + n - 1}")
    return data.to_model(x[first : first + n])


def cold_start(
    req: ColdRequest, T: int, device: str | None = None, originals: torch.Tensor | None = None
) -> tuple[int, torch.Tensor, torch.Tensor | None]:
    """(t of the start, x_t, the originals or None) for a request; deterministic for its seed. Restoring,
    the originals are `originals` (n, 1, H, W) in [0, 1] when given, else held-out digits."""
    dev = torch.device(device_name(device))
    g = make_generator(req.seed, dev)
    fwd = forward_of(req, T)
    shape = data.shape(req.data)
    if req.restore_from is None:
        x = prior(req.data, req.degradation, T).sample(req.n, shape, req.sigma, g)
        return T, x + req.start_noise * randn(x.shape, g) if req.start_noise > 0 else x, None
    if req.restore_from > T:
        raise ValueError(f"restore-from t must be between 1 and T={T}, got {req.restore_from}")
    if originals is None:
        x0 = held_out(req.data, req.first, req.n).to(dev)
    elif tuple(originals.shape) != (req.n, *shape):
        raise ValueError(f"originals must be ({req.n}, {', '.join(map(str, shape))}), got {tuple(originals.shape)}")
    else:
        x0 = data.to_model(originals).to(dev)
    x = fwd.sample(x0, req.restore_from, randn(x0.shape, g))
    return req.restore_from, x + req.start_noise * randn(x.shape, g) if req.start_noise > 0 else x, x0


def cold_plan(req: ColdRequest, device: str | None = None, originals: torch.Tensor | None = None) -> core.Plan:
    m = cold_model(req.data, device)
    posterior = m.posterior(req.degradation, req.sigma)
    t, x, _ = cold_start(req, m.T, device, originals)
    g = make_generator(req.seed + 1, device_name(device))
    return cold.plan(posterior, cold.make_reverse(req.sampler, forward_of(req, m.T), req.fresh), x, t, g)


class ColdProcess(Process):
    name = "cold"
    title = "cold diffusion: deterministic degradations (blur, mask, pixelate, fade) + σ ε; naive and improved"
    Request = ColdRequest
    default_data = "mnist28"
    tab = ("Cold diffusion", "udm.app.cold:build")

    def datasets(self) -> tuple[str, ...]:
        return ("mnist28",)

    def kind(self, data_name: str) -> str:
        return "images"

    def choices(self, data_name: str) -> tuple[Choice, ...]:
        """One per trained (degradation, σ) and rule (each degradation at σ = 0 without a checkpoint)."""
        try:
            variants = cold_variants(data_name)
        except FileNotFoundError:
            variants = tuple((d, 0.0) for d in cold.DEGRADATIONS)
        fixed = lambda d, s: (("degradation", d), ("sigma", s))  # noqa: E731
        return tuple(Choice(r, fixed=fixed(d, s)) for d, s in variants for r in cold.SAMPLERS)

    def plan(self, req: ColdRequest, device: str | None = None) -> core.Plan:
        return cold_plan(req, device)

    def total_steps(self, choice, data_name, steps):
        return cold_T(data_name)

    def chunk(self, req: ColdRequest, i: int, start: int, size: int) -> ColdRequest:
        """Seed + i, and when restoring, the next held-out digits."""
        return replace(req, n=size, seed=req.seed + i, first=req.first + start)

    def train_config(self, data_name: str, small: bool = False, **overrides):
        from .train import ColdTrainConfig

        return config_with(ColdTrainConfig(data=data_name, small=small), self.name, **overrides)

    def train(self, cfg, out, progress: bool = True):
        from .train import train_cold

        return train_cold(cfg, out, progress=progress)

    def forget(self) -> None:
        _models.forget()


register(ColdProcess())
