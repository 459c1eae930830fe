"""The registry of processes: each forward process the library runs is one `Process` value that says
everything the CLI, Compare, the app and the benches ask about it, so none of them names a process.

A process entry holds no math (that lives in its math module: forward, posterior, reverse, loss); it says
which datasets and samplers it has, how a validated request becomes a `core.Plan`, how x_t and x̂_0 are
shown as data, what a run costs, and how its model is trained and where its checkpoint lives.

    from udm import process
    hot = process.get("hot")
    req = hot.request(data="moons", sampler="ddim", steps=20, n=500)
    final = core.last(hot.plan(req).steps()).x_s

A new process is its math module and one `register(MyProcess())` (see tests/test_registry.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Literal

import torch

from . import core

SEED_MAX = 2**63 - 1  # a seed is any whole number 0 … SEED_MAX, in the library, the CLI and the app
Kind = Literal["images", "points", "words"]


def check_range(value, name: str, lo, hi) -> None:
    """A clear ValueError unless lo ≤ value ≤ hi (the one bound check every request uses)."""
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {value}")


def check_steps(steps: int, T: int, name: str = "steps") -> None:
    """K steps of a model with T: 1 ≤ K ≤ T."""
    if not 1 <= steps <= T:
        raise ValueError(f"{name} must be between 1 and T={T}, got {steps}")


def check_choice(value, name: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(str, valid))}")


def check_seed(seed: int) -> None:
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be a whole number between 0 and 2^63 − 1, got {seed}")


@dataclass(frozen=True)
class Choice:
    """One sampler a process offers, as a value: the request's `sampler`, the other request fields it
    fixes (a cold variant: degradation and σ), whether it takes a step count K and DDIM's η, and whether
    it is a reference scheduler (diffusers') rather than a udm reverse rule."""

    sampler: str
    fixed: tuple[tuple[str, Any], ...] = ()
    steps: bool = False
    eta: bool = False
    reference: bool = False
    max_steps: int | None = None  # the largest K it takes (None: the model's T)

    @property
    def label(self) -> str:
        """How the choice is shown and named: e.g. "ddim", "blur σ=0.2 improved"."""
        shown = [f"σ={v:g}" if k == "sigma" else str(v) for k, v in self.fixed]
        return " ".join([*shown, self.sampler])

    def fields(self) -> dict[str, Any]:
        return {"sampler": self.sampler, **dict(self.fixed)}


class Process:
    """What the rest of udm asks about a forward process. Subclasses set the class attributes and
    implement `plan`; the defaults fit a process whose samples are images or points of `udm.data`."""

    name: ClassVar[str]
    title: ClassVar[str]  # one line for help texts
    Request: ClassVar[type]  # a frozen dataclass with data, sampler, n and seed; it validates every field
    default_data: ClassVar[str | None] = None  # None: --data is required
    tab: ClassVar[tuple[str, str] | None] = None  # (tab title, "module:function") of its app tab, if any

    # ---------------------------------------------------------------- what it offers
    def datasets(self) -> tuple[str, ...]:
        raise NotImplementedError

    def choices(self, data: str) -> tuple[Choice, ...]:
        """Every sampler it offers on `data`: its own reverse rules first, then reference schedulers."""
        raise NotImplementedError

    def choice(self, data: str, label: str) -> Choice:
        """The choice of that label (a clear ValueError naming the valid ones)."""
        found = {c.label: c for c in self.choices(data)}
        check_choice(label, f"sampler for {self.name}", tuple(found))
        return found[label]

    def kind(self, data: str) -> Kind:
        """What goes through the posterior network: images, points or words."""
        from . import data as d

        return d.kind(data)

    def max_samples(self, data: str) -> int:
        from .pipeline import MAX_SAMPLES

        return MAX_SAMPLES[self.kind(data)]

    # ---------------------------------------------------------------- one run
    def request(self, **fields_: Any):
        """A validated request; a field this process does not have is a ValueError naming the ones it has."""
        names = {f.name for f in fields(self.Request)}
        extra = sorted(set(fields_) - names)
        if extra:
            raise ValueError(
                f"{', '.join(extra)} {'does' if len(extra) == 1 else 'do'} not apply to {self.name}; "
                f"its options: {', '.join(sorted(names))}"
            )
        return self.Request(**fields_)

    def compare_request(self, choice: Choice, data: str, n: int, seed: int, steps: int | None, eta: float | None):
        """The request of a udm choice as Compare runs it (the process's defaults for the rest)."""
        extra = {"steps": steps} if choice.steps else {}
        if choice.eta:
            extra["eta"] = eta
        return self.request(data=data, n=n, seed=seed, **choice.fields(), **extra)

    def plan(self, req, device: str | None = None) -> core.Plan:
        raise NotImplementedError

    def steps(self, req, device: str | None = None) -> Iterator[core.Step]:
        """The step records of one run (deterministic for its seed)."""
        return self.plan(req, device).steps()

    def reference_steps(
        self, choice: Choice, data: str, n: int, seed: int, steps: int, eta: float | None, device: str
    ) -> Iterator[core.Step]:
        """A reference scheduler's loop as step records, from the x_T udm's samplers start at."""
        raise ValueError(f"{self.name} has no reference scheduler {choice.label!r}")

    def evaluations(self, choice: Choice, data: str, steps: int | None) -> int:
        """Network calls of one run of `choice`."""
        return self.total_steps(choice, data, steps)

    def total_steps(self, choice: Choice, data: str, steps: int | None) -> int:
        """Reverse steps of one run of `choice` (a progress bar's length)."""
        if steps is None:
            raise ValueError(f"{choice.label} needs a number of steps ≥ 1")
        return steps

    def chunk(self, req, i: int, start: int, size: int):
        """Batch i (samples start … start + size − 1) of a large run (`many`): seed + i."""
        return replace(req, n=size, seed=req.seed + i)

    # ---------------------------------------------------------------- showing it
    def decode(self, data: str, x: torch.Tensor):
        """Model space → data: images in [0, 1] or points (CPU float tensors), or a list of strings."""
        from .pipeline import to_data

        return to_data(data, x)

    def state(self, data: str, x_t: torch.Tensor):
        """x_t as a samples file stores it: data, or the latent where x_t is one."""
        return self.decode(data, x_t)

    def shown_state(self, data: str, x_t: torch.Tensor):
        """x_t as a picture shows it (None: not drawn)."""
        return self.state(data, x_t)

    def figures(self, data_name: str, final) -> dict[str, float]:
        """The judge's figures for final samples in data space; images fewer than 16 get only their
        share of distinct ones (no Fréchet distance), fewer than 2 nothing."""
        from . import judge
        from .data import is_image

        if isinstance(final, list):
            return judge.word_scores(data_name, final)
        if len(final) < 2:
            return {}
        if is_image(data_name) and len(final) < 16:
            return {"distinct": judge.diversity(final)["distinct"] / len(final)}
        return judge.evaluate(data_name, final)

    # ---------------------------------------------------------------- its model
    def checkpoint(self, data: str) -> str:
        """The folder name of its shipped checkpoint under the checkpoint root."""
        return f"{self.name}-{data}"

    def train_config(self, data: str, small: bool = False, **overrides: Any):
        raise NotImplementedError

    def train(self, cfg, out, progress: bool = True) -> dict[str, Any]:
        raise NotImplementedError

    def forget(self) -> None:
        """Drop the loaded models (after the checkpoint folder changed)."""


def config_with(cfg, process: str, **overrides: Any):
    """`replace(cfg, **overrides)` with a clear error for an option the config does not have."""
    extra = sorted(set(overrides) - {f.name for f in fields(cfg)})
    if extra:
        flags = ", ".join("--" + k.replace("_", "-") for k in extra)
        verb = "is not a training option" if len(extra) == 1 else "are not training options"
        raise ValueError(f"{flags} {verb} of {process}")
    return replace(cfg, **overrides)


# ---------------------------------------------------------------- the registry
_REGISTRY: dict[str, Process] = {}
_BUILTIN = ("udm.hot_pipeline", "udm.cold_pipeline", "udm.text_pipeline", "udm.encoding_pipeline")
_loaded = False


def register(p: Process) -> Process:
    """Add a process (replacing one of the same name); it is then offered everywhere."""
    _REGISTRY[p.name] = p
    return p


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def _builtin() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _BUILTIN:
            importlib.import_module(module)


def _ordered() -> list[Process]:
    """The built-in processes in their fixed order (whichever module was imported first), then the others
    in the order they were registered."""
    _builtin()
    rank = {m: i for i, m in enumerate(_BUILTIN)}
    return sorted(_REGISTRY.values(), key=lambda p: rank.get(type(p).__module__, len(rank)))


def names() -> tuple[str, ...]:
    return tuple(p.name for p in _ordered())


def get(name: str) -> Process:
    _builtin()
    check_choice(name, "process", tuple(_REGISTRY))
    return _REGISTRY[name]


def every() -> tuple[Process, ...]:
    return tuple(_ordered())


def forget_models() -> None:
    """Drop every process's loaded models."""
    for p in every():
        p.forget()


def many(p: Process, req, n: int, device: str | None = None):
    """n final samples in data space, in request-sized batches (`Process.chunk`: seeds seed, seed+1, …)."""
    size = p.max_samples(req.data)
    parts = []
    for i, start in enumerate(range(0, n, size)):
        r = p.chunk(req, i, start, min(size, n - start))
        parts.append(p.decode(req.data, core.last(p.steps(r, device)).x_s))
    return sum(parts, []) if isinstance(parts[0], list) else torch.cat(parts)
