"""Samplers side by side: several samplers of one process and dataset from the same seed (the same x_T
where the process allows), each with its wall time, network evaluations and the judge's figures.

Every process of the registry (`udm.process`) can be compared; a sampler is one of the process's
`Choice`s, named by its label. udm samplers that share a posterior and a step grid run as one batch
through it (one posterior call per step for all of them, `core.batch`): the hot samplers at one K,
encoding DDPM and DDIM at one K, cold naive and improved of one variant, the mask samplers; on a CPU only
while the stack is small (CPU_STACK_LIMIT). A run with one sampler is exactly that sampler run alone.
The reference schedulers a user would otherwise pick (`udm.reference`) run on the same networks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from . import core, process
from .device import default_device
from .process import Choice, check_range, check_seed

MAX_SAMPLERS = 5  # (the Lab runs every rule of a process: five for the mask model)
MAX_FRAMES = 50  # frames kept per sampler for the lockstep scrub
# On a CPU one stacked network call pays only while the stack is small: past these sizes the larger
# activations fall out of the cache and the element-wise layers cost more per sample than separate calls
# do (`python -m bench.compare_tables --tables 4` measures both sides); a GPU takes a stack of any size.
CPU_STACK_LIMIT = {"images": 64, "points": 8192, "words": 1024}  # samples, all stacked samplers together


def processes() -> tuple[str, ...]:
    return process.names()


def datasets(name: str) -> tuple[str, ...]:
    return process.get(name).datasets()


def samplers(name: str, data_name: str | None = None) -> tuple[str, ...]:
    """The labels of every sampler a process offers (on `data_name`, or its first dataset)."""
    p = process.get(name)
    return tuple(c.label for c in p.choices(data_name or p.datasets()[0]))


@dataclass(frozen=True)
class Entry:
    """One sampler of a comparison, by its label; `steps` for samplers that take K, `eta` for DDIM's η."""

    sampler: str
    steps: int | None = None
    eta: float | None = None

    @property
    def name(self) -> str:
        """The sampler and its η: what tells two entries apart at the same step count."""
        e = f", η = {self.eta:g}" if self.eta not in (None, 0.0) else ""
        return f"{self.sampler}{e}"

    @property
    def label(self) -> str:
        k = f", {self.steps} steps" if self.steps else ""
        return f"{self.name}{k}"


@dataclass
class Result:
    entry: Entry
    frames: list[tuple[int, object, object]] = field(default_factory=list)  # (t, x_t view, x̂_0 view)
    final: object = None  # data space: images in [0, 1], points, or strings
    seconds: float = 0.0
    evaluations: int = 0
    figures: dict[str, float] = field(default_factory=dict)
    batched_with: int = 1  # samplers sharing its network evaluations


def _runs(p: str | process.Process) -> process.Process:
    """A process by its registry name, or a process value that is not registered (a Lab process)."""
    return process.get(p) if isinstance(p, str) else p


@dataclass(frozen=True)
class Request:
    process: str | process.Process  # a registry name, or a process value (the Lab's)
    data: str
    entries: tuple[Entry, ...]
    n: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        p = _runs(self.process)
        if self.data not in p.datasets():
            raise ValueError(f"unknown dataset {self.data!r} for {self.process}; valid: {', '.join(p.datasets())}")
        check_range(len(self.entries), "the number of samplers", 1, MAX_SAMPLERS)
        for k, e in enumerate(self.entries):
            which = f"sampler {k + 1} ({e.sampler})"
            try:
                c = p.choice(self.data, e.sampler)
            except ValueError as err:
                raise ValueError(f"sampler {k + 1}: {err}") from None
            if c.steps and (e.steps is None or e.steps < 1):
                raise ValueError(f"{which} needs a number of steps ≥ 1")
            if c.steps and c.max_steps is not None:
                check_range(e.steps, f"steps of {which}", 1, c.max_steps)
            if e.eta is not None:
                check_range(e.eta, f"η of {which}", 0.0, 1.0)
            if e.eta not in (None, 0.0) and not c.eta:
                with_eta = ", ".join(x.label for x in p.choices(self.data) if x.eta)
                raise ValueError(f"η applies to {with_eta}, not {which}")
        check_seed(self.seed)
        check_range(self.n, "number of samples", 1, p.max_samples(self.data))

    @property
    def runs(self) -> process.Process:
        return _runs(self.process)

    def choices(self) -> tuple[Choice, ...]:
        p = self.runs
        return tuple(p.choice(self.data, e.sampler) for e in self.entries)


def _kept(n_steps: int) -> set[int]:
    if n_steps <= MAX_FRAMES:
        return set(range(n_steps))
    return {round(i * (n_steps - 1) / (MAX_FRAMES - 1)) for i in range(MAX_FRAMES)}


# ---------------------------------------------------------------- udm samplers: batched where they can be
def plan(req: Request, e: Entry, device: str) -> core.Plan:
    """The run of udm sampler e alone, as its process makes it (same seed, same x_T)."""
    p, c = req.runs, req.runs.choice(req.data, e.sampler)
    return p.plan(p.compare_request(c, req.data, req.n, req.seed, e.steps, e.eta), device)


def views(req: Request) -> tuple[Callable, Callable]:
    """(x_t view, x̂_0 view): model space → what a picture shows (None where x_t is not drawn)."""
    p = req.runs
    return (lambda x: p.shown_state(req.data, x)), (lambda x: p.decode(req.data, x))


@dataclass(frozen=True)
class Update:
    """What a comparison has done so far (`stream`): the share of its steps, what it is at, which entries
    just got a new frame, and the results as far as they go (finished, with figures, when `done`)."""

    fraction: float
    what: str
    results: list[Result]
    new_frames: tuple[int, ...] = ()
    done: bool = False


def _timed(records):
    """(record, seconds spent making it) for each record of a generator: the time a consumer spends between
    records (drawing frames) is not counted."""
    it = iter(records)
    while True:
        t0 = time.perf_counter()
        record = next(it, None)
        if record is None:
            return
        yield record, time.perf_counter() - t0


def _batched(req: Request, idx: list[int], plans: dict[int, core.Plan], results: list[Result]):
    """Run the udm samplers `idx` (one shared posterior and step grid) as one batch: each step evaluates
    the network once for all of them; a lone sampler runs exactly as it would alone. Yields (steps done,
    what, entries with a new frame) after every step."""
    xt_view, x0_view = views(req)
    run = core.batch([plans[i] for i in idx])
    keep, n, seconds = _kept(len(run.timesteps)), req.n, 0.0
    names = ", ".join(req.entries[i].name for i in idx)
    for k, (step, spent) in enumerate(_timed(run.steps())):
        t0 = time.perf_counter()
        if k in keep:
            for j, i in enumerate(idx):
                part = slice(j * n, (j + 1) * n)
                results[i].frames.append((step.t, xt_view(step.x_t[part]), x0_view(step.x0_hat[part])))
        seconds += spent + time.perf_counter() - t0
        yield len(idx), f"{names}: t = {step.t}", tuple(idx) if k in keep else ()
    for j, i in enumerate(idx):
        r = results[i]
        r.final, r.seconds, r.batched_with = x0_view(step.x_s[j * n : (j + 1) * n]), seconds, len(idx)


def _reference(req: Request, i: int, records, results: list[Result]):
    """A reference scheduler's run, one step after another (yields as `_batched` does)."""
    xt_view, x0_view = views(req)
    e, r = req.entries[i], results[i]
    keep, seconds = _kept(total_steps(req, e)), 0.0
    for k, (step, spent) in enumerate(_timed(records)):
        t0 = time.perf_counter()
        if k in keep:
            r.frames.append((step.t, xt_view(step.x_t), x0_view(step.x0_hat)))
        seconds += spent + time.perf_counter() - t0
        yield 1, f"{e.name}: t = {step.t}", (i,) if k in keep else ()
    r.final, r.seconds = x0_view(step.x_s), seconds


def network_evaluations(process_name: str | process.Process, name: str, e: Entry) -> int:
    """Network calls of one run of entry e (the process says: e.g. K for hot samplers, 2K − 1 for encoding,
    T for cold, l for the udm text samplers)."""
    p = _runs(process_name)
    return p.evaluations(p.choice(name, e.sampler), name, e.steps)


def image_cost(req: Request) -> int:
    """How many images go through a network in all (samples × evaluations, summed over entries): what a
    request costs where a network call on an image dominates (0 for points and words)."""
    if req.runs.kind(req.data) != "images":
        return 0
    return req.n * sum(network_evaluations(req.process, req.data, e) for e in req.entries)


def total_steps(req: Request, e: Entry) -> int:
    p = req.runs
    return p.total_steps(p.choice(req.data, e.sampler), req.data, e.steps)


def stream(req: Request, device: str | None = None) -> Iterator[Update]:
    """Every entry's trajectory, final samples, wall time, network evaluations and figures, reported step
    by step (`Update`); the last update holds the results. udm samplers that share a posterior and a step
    grid run as one batch (on a CPU up to CPU_STACK_LIMIT samples); reference schedulers run one after
    another. A sampler's wall time counts its own work only, not what the consumer does between updates."""
    device = str(torch.device(device) if device else default_device())
    p, choices = req.runs, req.choices()
    results = [Result(e, evaluations=network_evaluations(req.process, req.data, e)) for e in req.entries]
    total, done = sum(total_steps(req, e) for e in req.entries), 0
    # every run is set up before any of them starts (a bad request fails here, not halfway)
    reference = {
        i: p.reference_steps(c, req.data, req.n, req.seed, e.steps, e.eta, device)
        for i, (e, c) in enumerate(zip(req.entries, choices))
        if c.reference
    }
    plans = {i: plan(req, e, device) for i, e in enumerate(req.entries) if i not in reference}
    limit = CPU_STACK_LIMIT[p.kind(req.data)] if device == "cpu" else None
    groups: list[list[int]] = []
    for i, pl in plans.items():
        fits = lambda g: limit is None or (len(g) + 1) * req.n <= limit  # noqa: E731
        group = next((g for g in groups if plans[g[0]].batches_with(pl) and fits(g)), None)
        if group is None:
            groups.append([i])
        else:
            group.append(i)
    runs = [_batched(req, idx, plans, results) for idx in groups]
    runs += [_reference(req, i, records, results) for i, records in reference.items()]
    for steps in runs:
        for k, what, new in steps:
            done += k
            yield Update(min(1.0, done / total), what, results, new)
    for r in results:
        r.figures = figures(req, r.final)
    yield Update(1.0, "figures", results, done=True)


def run(req: Request, device: str | None = None, progress: Callable[[float, str], None] | None = None) -> list[Result]:
    """`stream` to its end: the results (progress(fraction, what) after every step)."""
    for update in stream(req, device):
        if progress is not None:
            progress(update.fraction, update.what)
    return update.results


def figures(req: Request, final) -> dict[str, float]:
    """The judge's figures of one sampler's final samples (the process says which)."""
    return req.runs.figures(req.data, final)
