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

import torch

from . import checkpoint, core, data, hot, oracle
from .device import default_device, make_generator
from .schedule import Schedule, make

MODELS: tuple[str, ...] = ("trained", "exact")
MAX_SAMPLES = {"points": 4096, "images": 256}  # per request: CPU-safe sizes


def checkpoint_root() -> Path:
    return Path(os.environ.get("UDM_CHECKPOINTS", checkpoint.ROOT))


@dataclass(frozen=True)
class HotRequest:
    """One hot-diffusion run. `model="exact"` is the closed-form ε* (gaussians8 only)."""

    data: str = "mnist28"
    sampler: str = "ddim"
    steps: int = 50
    n: int = 16
    seed: int = 0
    eta: float | None = None  # None: the sampler's own (ddpm 1, ddim 0)
    model: str = "trained"

    def __post_init__(self) -> None:
        data.check_name(self.data)
        if self.sampler not in hot.SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; valid: {', '.join(hot.SAMPLERS)}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; valid: {', '.join(MODELS)}")
        if self.model == "exact" and self.data != "gaussians8":
            raise ValueError("the exact model exists only for gaussians8 (a true Gaussian mixture)")
        cap = MAX_SAMPLES["images" if data.is_image(self.data) else "points"]
        if not 1 <= self.n <= cap:
            raise ValueError(f"number of samples must be between 1 and {cap} for {self.data}, got {self.n}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a non-negative integer below 2^63, got {self.seed}")
        if self.eta is not None and not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {self.eta}")


@dataclass(frozen=True)
class HotModel:
    posterior: hot.EpsPosterior
    stats: dict[str, torch.Tensor]

    @property
    def schedule(self) -> Schedule:
        return self.posterior.schedule


@lru_cache(maxsize=None)
def hot_model(name: str, model: str = "trained", device: str | None = None) -> HotModel:
    """The shipped ε-model for dataset `name` (or the exact one), loaded once per device."""
    dev = torch.device(device) if device else default_device()
    if model == "exact":
        sch = make("linear", 1000)
        eps = oracle.MixtureEps(data.gaussians8(), sch)
        x0 = data.points("gaussians8", 20_000, seed=1).to(dev)
        stats = hot.estimate_eps_sq(eps, hot.GaussianForward(sch), x0, grid=200, per_t=2000,
                                    generator=make_generator(0, dev))
        return HotModel(hot.EpsPosterior(eps, sch), stats)
    folder = checkpoint_root() / f"hot-{name}"
    net, cfg, stats = checkpoint.load(folder, dev)
    return HotModel(hot.EpsPosterior(net, make(cfg["schedule"], cfg["T"])), stats)


def hot_steps(req: HotRequest, device: str | None = None) -> Iterator[core.Step]:
    """The step records of one run (deterministic for `req.seed`), x in model space."""
    m = hot_model(req.data, req.model, device)
    if not 1 <= req.steps <= m.schedule.T:
        raise ValueError(f"steps must be between 1 and T={m.schedule.T}, got {req.steps}")
    reverse = hot.make_reverse(req.sampler, m.schedule, eta=req.eta, stats=m.stats)
    g = make_generator(req.seed, default_device() if device is None else device)
    return hot.sample(m.posterior, reverse, (req.n, *data.shape(req.data)), req.steps, g)


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
