"""Ready-made sampling for users, the CLI and the app: validated requests over the shipped models.

`hot_steps(HotRequest(...))` yields the `core.Step` records of one run; models load on first use and
stay cached. The checkpoint folder is `checkpoints/` beside the package, or `$UDM_CHECKPOINTS`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch

from . import checkpoint, core, data, hot, oracle
from .device import LOADING, default_device, make_generator
from .schedule import Schedule, make

ModelName = Literal["trained", "exact"]
MODELS: tuple[str, ...] = ("trained", "exact")
MAX_SAMPLES = {"points": 4096, "images": 256}  # per request: CPU-safe sizes


def checkpoint_root() -> Path:
    return Path(os.environ.get("UDM_CHECKPOINTS", checkpoint.ROOT))


@dataclass(frozen=True)
class HotRequest:
    """One hot-diffusion run. `model="exact"` is the closed-form ε* (gaussians8 only)."""

    data: data.DatasetName = "mnist28"
    sampler: hot.SamplerName = "ddim"
    steps: int = 50
    n: int = 16
    seed: int = 0
    eta: float | None = None  # None: the sampler's own (ddpm 1, ddim 0)
    model: ModelName = "trained"

    def __post_init__(self) -> None:
        data.check_name(self.data)
        hot.sampler_eta(self.sampler, self.eta)
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; valid: {', '.join(MODELS)}")
        if self.model == "exact" and self.data != "gaussians8":
            raise ValueError("the exact model exists only for gaussians8 (a true Gaussian mixture)")
        cap = MAX_SAMPLES[data.kind(self.data)]
        if not 1 <= self.n <= cap:
            raise ValueError(f"number of samples must be between 1 and {cap} for {self.data}, got {self.n}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a non-negative integer below 2^63, got {self.seed}")


@dataclass(frozen=True)
class HotModel:
    posterior: hot.EpsPosterior
    stats: dict[str, torch.Tensor]

    @property
    def schedule(self) -> Schedule:
        return self.posterior.schedule


_LOADING = LOADING  # shared by every loader (udm.device)


def hot_model(name: str, model: str = "trained", device: str | None = None) -> HotModel:
    """The shipped ε-model for dataset `name` (or the exact one), loaded once per device."""
    with _LOADING:  # a second caller waits for the first load, then finds the model cached
        return _hot_model(name, model, str(torch.device(device) if device else default_device()))


def forget_models() -> None:
    """Drop the loaded models (after the checkpoint folder changed)."""
    _hot_model.cache_clear()


def hot_schedule(name: str, model: str = "trained") -> Schedule:
    """The noise schedule of a model, read from its config (nothing is loaded)."""
    if model == "exact":
        return make("linear", 1000)
    cfg = checkpoint.load_config(checkpoint_root() / f"hot-{name}")
    return make(cfg["schedule"], cfg["T"])


@lru_cache(maxsize=None)
def _hot_model(name: str, model: str, device: str) -> HotModel:
    dev = torch.device(device)
    if model == "exact":
        sch = hot_schedule(name, model)
        eps = oracle.MixtureEps(data.gaussians8(), sch)
        x0 = data.points("gaussians8", 20_000, seed=1).to(dev)
        stats = hot.estimate_eps_sq(
            eps, hot.GaussianForward(sch), x0, grid=200, per_t=2000, generator=make_generator(0, dev)
        )
        return HotModel(hot.EpsPosterior(eps, sch), stats)
    net, cfg, stats = checkpoint.load(checkpoint_root() / f"hot-{name}", dev)
    return HotModel(hot.EpsPosterior(net, make(cfg["schedule"], cfg["T"])), stats)


def hot_steps(req: HotRequest, device: str | None = None) -> Iterator[core.Step]:
    """The step records of one run (deterministic for `req.seed`), x in model space."""
    return hot_plan(req, device).steps()


def hot_plan(req: HotRequest, device: str | None = None) -> core.Plan:
    m = hot_model(req.data, req.model, device)
    if not 1 <= req.steps <= m.schedule.T:
        raise ValueError(f"steps must be between 1 and T={m.schedule.T}, got {req.steps}")
    reverse = hot.make_reverse(req.sampler, m.schedule, eta=req.eta, stats=m.stats)
    g = make_generator(req.seed, default_device() if device is None else device)
    return hot.plan(m.posterior, reverse, (req.n, *data.shape(req.data)), req.steps, g)


def to_data(name: str, x: torch.Tensor) -> torch.Tensor:
    """Model space → data space on the CPU: images in [0, 1], points as they are."""
    return (data.from_model(x) if data.is_image(name) else x).detach().float().cpu()


def forward_strip(name: str, schedule: Schedule, n_frames: int = 8, seed: int = 0) -> tuple[list[int], torch.Tensor]:
    """x_0 → x_T for one example (images) or a cloud of 1,000 (points): timesteps and (n_frames, …)."""
    ts = torch.linspace(0, schedule.T, n_frames).round().long().tolist()
    fwd = hot.GaussianForward(schedule)
    x0 = data.training_set(name)[:1] if data.is_image(name) else data.points(name, 1000, seed)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    return ts, torch.stack([to_data(name, fwd.sample(x0, t, noise)) for t in ts])


def many_samples(
    data_name: str,
    sampler: str,
    steps: int,
    n: int,
    *,
    seed: int = 0,
    model: str = "trained",
    eta: float | None = None,
    batch: int | None = None,
    device: str | None = None,
) -> torch.Tensor:
    """n final samples in data space (for metrics), drawn in request-sized batches with seeds seed, seed+1, …"""
    batch = batch or MAX_SAMPLES[data.kind(data_name)]
    chunks = []
    for i, start in enumerate(range(0, n, batch)):
        req = HotRequest(
            data=data_name, sampler=sampler, steps=steps, n=min(batch, n - start), seed=seed + i, eta=eta, model=model
        )
        chunks.append(to_data(data_name, core.last(hot_steps(req, device)).x_s))
    return torch.cat(chunks)
