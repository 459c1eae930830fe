"""Hot diffusion, ready to run: validated requests over the shipped ε-models (or the exact one), and the
registry entry `HotProcess`. `process.get("hot").steps(HotRequest(...))` yields one run's step records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from . import checkpoint, core, data, distill, hot, oracle, reference
from .device import make_generator, randn
from .pipeline import MAX_SAMPLES, Models, checkpoint_root, device_name, to_data
from .process import Choice, Process, check_choice, check_range, check_seed, check_steps, config_with, register
from .schedule import SPACINGS, Schedule, Spacing, make

ModelName = Literal["trained", "exact", "distilled"]
MODELS: tuple[str, ...] = ("trained", "exact", "distilled")
DISTILLED = ("mnist28",)  # the datasets with a few-step student (`python -m udm distill`)


@dataclass(frozen=True)
class HotRequest:
    """One hot-diffusion run. `model="exact"` is the closed-form ε* (gaussians8 only); `model="distilled"`
    the few-step student (mnist28), which takes 1 to 20 steps on its own timesteps."""

    data: data.DatasetName = "mnist28"
    sampler: hot.SamplerName = "ddim"
    steps: int = 50  # K ≤ T, checked against the model's T when the run is planned
    n: int = 16
    seed: int = 0
    eta: float | None = None  # None: the sampler's own (ddpm 1, ddim 0)
    model: ModelName = "trained"
    spacing: Spacing = "even"  # where the K timesteps lie (udm's samplers; diffusers' use "trailing")

    def __post_init__(self) -> None:
        data.check_name(self.data)
        hot.sampler_eta(self.sampler, self.eta)
        check_choice(self.spacing, "spacing", SPACINGS)
        check_choice(self.model, "model", MODELS)
        if self.model == "exact" and self.data != "gaussians8":
            raise ValueError("the exact model exists only for gaussians8 (a true Gaussian mixture)")
        if self.model == "distilled":
            if self.data not in DISTILLED:
                raise ValueError(f"the distilled model exists only for {', '.join(DISTILLED)}")
            if self.spacing != "even":
                raise ValueError("the distilled model runs on its own timesteps; --spacing does not apply to it")
        check_range(self.n, f"number of samples for {self.data}", 1, MAX_SAMPLES[data.kind(self.data)])
        if self.eta is not None:
            check_range(self.eta, "η", 0.0, 1.0)
        if self.steps < 1:
            raise ValueError(f"steps must be ≥ 1, got {self.steps}")
        check_seed(self.seed)


@dataclass(frozen=True)
class HotModel:
    posterior: hot.EpsPosterior
    stats: dict[str, torch.Tensor]
    timesteps: tuple[int, ...] | None = None  # a distilled model's own timesteps (None: any of 1..T)

    @property
    def schedule(self) -> Schedule:
        return self.posterior.schedule


def _load(name: str, model: str, device: str) -> HotModel:
    dev = torch.device(device)
    if model == "exact":
        sch = make("linear", 1000)
        eps = oracle.MixtureEps(data.gaussians8(), sch)
        x0 = data.points("gaussians8", 20_000, seed=1).to(dev)
        stats = hot.estimate_eps_sq(
            eps, hot.GaussianForward(sch), x0, grid=200, per_t=2000, generator=make_generator(0, dev)
        )
        return HotModel(hot.EpsPosterior(eps, sch), stats)
    if model == "distilled":
        net, cfg, _ = checkpoint.load(checkpoint_root() / f"hot-{name}-distilled", dev)
        sch = make(cfg["schedule"], cfg["T"])
        return HotModel(hot.EpsPosterior(hot.VEps(net, sch), sch), {}, tuple(sorted(cfg["timesteps"])))
    net, cfg, stats = checkpoint.load(checkpoint_root() / f"hot-{name}", dev)
    return HotModel(hot.EpsPosterior(net, make(cfg["schedule"], cfg["T"])), stats)


_models: Models[HotModel] = Models(_load)


def hot_model(name: str, model: str = "trained", device: str | None = None) -> HotModel:
    """The shipped ε-model for dataset `name` (or the exact one), loaded once per device."""
    return _models(name, model, device=device)


def hot_schedule(name: str, model: str = "trained") -> Schedule:
    """The noise schedule of a model, read from its config (nothing is loaded)."""
    if model == "exact":
        return make("linear", 1000)
    cfg = checkpoint.load_config(checkpoint_root() / f"hot-{name}")
    return make(cfg["schedule"], cfg["T"])


def _student(name: str) -> dict:
    """The config of dataset `name`'s distilled student (nothing is loaded)."""
    return checkpoint.load_config(checkpoint_root() / f"hot-{name}-distilled")


def distilled_rule(name: str) -> str:
    """The reverse rule a distilled student runs with by default (its config's `sampler`)."""
    if name not in DISTILLED:
        return "ddim"  # (the request refuses the pair with its own message)
    return _student(name).get("sampler", "ddim")


def distilled_steps(name: str) -> int:
    """The most steps a distilled student takes: the number of its timesteps."""
    return len(_student(name)["timesteps"])


def hot_plan(req: HotRequest, device: str | None = None) -> core.Plan:
    m = hot_model(req.data, req.model, device)
    if m.timesteps is not None:
        check_range(req.steps, "steps of the distilled model", 1, len(m.timesteps))
    else:
        check_steps(req.steps, m.schedule.T)
    reverse = hot.make_reverse(req.sampler, m.schedule, eta=req.eta, stats=m.stats)
    g = make_generator(req.seed, device_name(device))
    if m.timesteps is not None:
        x_T = randn((req.n, *data.shape(req.data)), g)
        return core.Plan(m.posterior, reverse, x_T, tuple(distill.grid(list(m.timesteps), req.steps)), g)
    return hot.plan(m.posterior, reverse, (req.n, *data.shape(req.data)), req.steps, g, req.spacing)


def forward_strip(name: str, schedule: Schedule, n_frames: int = 8, seed: int = 0) -> tuple[list[int], torch.Tensor]:
    """x_0 → x_T for one example (images) or a cloud of 1,000 (points): timesteps and (n_frames, …)."""
    ts = torch.linspace(0, schedule.T, n_frames).round().long().tolist()
    fwd = hot.GaussianForward(schedule)
    x0 = data.training_set(name)[:1] if data.is_image(name) else data.points(name, 1000, seed)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    return ts, torch.stack([to_data(name, fwd.sample(x0, t, noise)) for t in ts])


class HotProcess(Process):
    name = "hot"
    title = "Gaussian diffusion: DDPM, DDIM (η), Analytic-DPM, any K ≤ T steps"
    Request = HotRequest
    tab = ("Hot diffusion", "udm.app.hot:build")

    def datasets(self) -> tuple[str, ...]:
        return data.DATASETS

    def choices(self, data_name: str) -> tuple[Choice, ...]:
        own = tuple(Choice(s, steps=True, eta=s.endswith("ddim")) for s in hot.SAMPLERS)
        return own + tuple(Choice(s, steps=True, eta=s == "diffusers-ddim", reference=True) for s in reference.HOT)

    def request(self, **fields_):
        """As every process's, except that the distilled student runs with its own rule unless told."""
        if fields_.get("model") == "distilled" and "sampler" not in fields_:
            fields_["sampler"] = distilled_rule(fields_.get("data", "mnist28"))
        return super().request(**fields_)

    def plan(self, req: HotRequest, device: str | None = None) -> core.Plan:
        return hot_plan(req, device)

    def reference_steps(self, choice, data_name, n, seed, steps, eta, device):
        model = hot_model(data_name, device=device)
        check_steps(steps, model.schedule.T, f"{choice.label}: steps")
        gen = make_generator(seed, device)
        x_T = randn((n, *data.shape(data_name)), gen)  # as hot_plan draws it
        return reference.diffusers_steps(model, choice.sampler, x_T, steps, gen, eta or 0.0)

    def evaluations(self, choice: Choice, data_name: str, steps: int | None) -> int:
        return reference.evaluations(choice.sampler, super().evaluations(choice, data_name, steps))

    def train_config(self, data_name: str, small: bool = False, **overrides):
        from .train import default_config

        return config_with(default_config(data_name, small=small), self.name, **overrides)

    def train(self, cfg, out, progress: bool = True):
        from .train import train

        return train(cfg, out, progress=progress)

    def forget(self) -> None:
        _models.forget()


register(HotProcess())
