"""Ready-made cold-diffusion runs over the shipped restorer: generation from a fully degraded start, or
restoration of held-out digits degraded to strength t. Validated requests; models cached on first use.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import torch

from . import checkpoint, cold, core, data
from .device import LOADING, default_device, make_generator, randn
from .pipeline import MAX_SAMPLES, checkpoint_root

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
        if not 1 <= self.n <= MAX_SAMPLES["images"]:
            raise ValueError(f"number of samples must be between 1 and {MAX_SAMPLES['images']}, got {self.n}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a non-negative integer below 2^63, got {self.seed}")
        if not 0 <= self.start_noise <= MAX_START_NOISE:
            raise ValueError(f"x_T noise must be between 0 and {MAX_START_NOISE}, got {self.start_noise}")
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


_LOADING = LOADING  # shared by every loader (udm.device)


def cold_model(name: str = "mnist28", device: str | None = None) -> ColdModel:
    """The shipped restorer for dataset `name`, loaded once per device."""
    with _LOADING:
        return _cold_model(name, str(torch.device(device) if device else default_device()))


def _variants(cfg: dict) -> tuple[tuple[str, float], ...]:
    return tuple((v["degradation"], float(v["sigma"])) for v in cfg["variants"])


def cold_variants(name: str = "mnist28") -> tuple[tuple[str, float], ...]:
    """The (degradation, σ) pairs of the shipped restorer, from its config (nothing is loaded)."""
    return _variants(checkpoint.load_config(checkpoint_root() / f"cold-{name}"))


def cold_T(name: str = "mnist28") -> int:
    """The number of steps T of the shipped restorer, from its config (nothing is loaded)."""
    return int(checkpoint.load_config(checkpoint_root() / f"cold-{name}")["T"])


def forget_models() -> None:
    """Drop the loaded restorers (after the checkpoint folder changed)."""
    _cold_model.cache_clear()


@lru_cache(maxsize=None)
def _cold_model(name: str, device: str) -> ColdModel:
    net, cfg, _ = checkpoint.load(checkpoint_root() / f"cold-{name}", torch.device(device))
    return ColdModel(net, cfg["T"], _variants(cfg))


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
    dev = torch.device(device) if device else default_device()
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


def cold_steps(
    req: ColdRequest, device: str | None = None, originals: torch.Tensor | None = None
) -> Iterator[core.Step]:
    """The step records of one run, x in model space (restoring `originals` when given, see cold_start)."""
    return cold_plan(req, device, originals).steps()


def cold_plan(req: ColdRequest, device: str | None = None, originals: torch.Tensor | None = None) -> core.Plan:
    m = cold_model(req.data, device)
    posterior = m.posterior(req.degradation, req.sigma)
    t, x, _ = cold_start(req, m.T, device, originals)
    g = make_generator(req.seed + 1, torch.device(device) if device else default_device())
    return cold.plan(posterior, cold.make_reverse(req.sampler, forward_of(req, m.T), req.fresh), x, t, g)


def many_cold(req: ColdRequest, n: int, device: str | None = None) -> torch.Tensor:
    """n final images in data space, in request-sized batches with seeds seed, seed+1, … (and, when
    restoring, consecutive held-out digits)."""
    from dataclasses import replace

    batch, chunks = MAX_SAMPLES["images"], []
    for i, start in enumerate(range(0, n, batch)):
        r = replace(req, n=min(batch, n - start), seed=req.seed + i, first=req.first + start)
        chunks.append(data.from_model(core.last(cold_steps(r, device)).x_s).float().cpu())
    return torch.cat(chunks)
