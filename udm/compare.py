"""Samplers side by side: several samplers of one process and dataset from the same seed (the same x_T
where the process allows), each with its wall time, network evaluations and the judge's figures.

udm samplers that share a posterior and a step grid run as one batch through it (one posterior call per
step for all of them, `core.batch`): the hot samplers at one K, encoding DDPM and DDIM at one K, cold
naive and improved of one variant, the mask samplers; on a CPU only while the stack is small
(CPU_STACK_LIMIT). A run with one sampler is exactly that sampler run alone. The reference schedulers a user would otherwise pick run on the same networks:
diffusers' DDPM / DDIM / DPM-Solver++ for hot diffusion, AmusedScheduler (MaskGIT) for the mask model and
DiscreteDDIMScheduler (D3PM) for the edit model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from . import cold, core, data, discrete, encoding, hot, judge, text, textmodel
from . import cold_pipeline as cp
from . import encoding_pipeline as ep
from . import pipeline as hp
from . import text_pipeline as tp
from .device import LOADING, default_device, make_generator, randn
from .train import ENCODING_DATA

PROCESSES: tuple[str, ...] = ("hot", "encoding", "cold", "mask", "edit")
DIFFUSERS_HOT: tuple[str, ...] = ("diffusers-ddpm", "diffusers-ddim", "diffusers-dpm-solver++")
DIFFUSERS_MASK = "diffusers-amused"
DIFFUSERS_EDIT: tuple[str, ...] = ("diffusers-discrete-ddim", "diffusers-discrete-ddim+loo")
STEPPED = {"hot", "encoding"}  # processes whose samplers take a step count K
ETA_SAMPLERS = {"ddim", "analytic-ddim", "diffusers-ddim"}  # samplers with a DDIM η (hot and encoding)
MAX_SAMPLERS = 4
MAX_FRAMES = 50  # frames kept per sampler for the lockstep scrub
# On a CPU one stacked network call pays only while the stack is small: past these sizes the larger
# activations fall out of the cache and the element-wise layers cost more per sample than separate calls
# do (`python -m bench.compare_tables --tables 4` measures both sides); a GPU takes a stack of any size.
CPU_STACK_LIMIT = {"images": 64, "points": 8192, "words": 1024}  # samples, all stacked samplers together


def datasets(process: str) -> tuple[str, ...]:
    return {
        "hot": data.DATASETS,
        "encoding": ENCODING_DATA,
        "cold": ("mnist28",),
        "mask": text.TEXTS,
        "edit": text.TEXTS,
    }[_check(process)]


def samplers(process: str) -> tuple[str, ...]:
    """Every sampler the Compare tab offers for a process (cold: one per trained (degradation, σ) and rule)."""
    if _check(process) == "hot":
        return hot.SAMPLERS + DIFFUSERS_HOT
    if process == "encoding":
        return encoding.SAMPLERS
    if process == "cold":
        try:
            variants = cp.cold_variants("mnist28")
        except FileNotFoundError:
            variants = tuple((d, 0.0) for d in cold.DEGRADATIONS)
        return tuple(f"{d} σ={s:g} {r}" for d, s in variants for r in cold.SAMPLERS)
    return discrete.SAMPLERS + ((DIFFUSERS_MASK,) if process == "mask" else DIFFUSERS_EDIT)


def _check(process: str) -> str:
    if process not in PROCESSES:
        raise ValueError(f"unknown process {process!r}; valid: {', '.join(PROCESSES)}")
    return process


@dataclass(frozen=True)
class Entry:
    """One sampler of a comparison. `steps` for hot / encoding / AmusedScheduler; `eta` for DDIM-type."""

    sampler: str
    steps: int | None = None
    eta: float | None = None

    @property
    def name(self) -> str:
        """The sampler and its η: what tells two entries apart at the same step count."""
        e = f", η = {self.eta:g}" if self.eta not in (None, 0.0) and self.sampler in ETA_SAMPLERS else ""
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


@dataclass(frozen=True)
class Request:
    process: str
    data: str
    entries: tuple[Entry, ...]
    n: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.process)
        if self.data not in datasets(self.process):
            raise ValueError(
                f"unknown dataset {self.data!r} for {self.process}; valid: {', '.join(datasets(self.process))}"
            )
        if not 1 <= len(self.entries) <= MAX_SAMPLERS:
            raise ValueError(f"choose between 1 and {MAX_SAMPLERS} samplers, got {len(self.entries)}")
        valid = samplers(self.process)
        for e in self.entries:
            if e.sampler not in valid:
                raise ValueError(f"unknown sampler {e.sampler!r} for {self.process}; valid: {', '.join(valid)}")
            stepped = self.process in STEPPED or e.sampler in (DIFFUSERS_MASK, *DIFFUSERS_EDIT)
            if stepped and (e.steps is None or e.steps < 1):
                raise ValueError(f"{e.sampler} needs a number of steps ≥ 1")
            if e.eta is not None and not 0 <= e.eta <= 1:
                raise ValueError(f"η must be between 0 and 1, got {e.eta}")
            if e.eta not in (None, 0.0) and e.sampler not in ETA_SAMPLERS:
                raise ValueError(f"η applies to {', '.join(sorted(ETA_SAMPLERS))}, not {e.sampler}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a non-negative integer below 2^63, got {self.seed}")
        cap = (
            tp.MAX_TEXT_SAMPLES
            if self.process in ("mask", "edit") or (self.process == "encoding" and ep.is_words(self.data))
            else hp.MAX_SAMPLES[data.kind(self.data) if self.process == "hot" else "images"]
        )
        if not 1 <= self.n <= cap:
            raise ValueError(f"number of samples must be between 1 and {cap}, got {self.n}")


# ---------------------------------------------------------------- the reference schedulers (diffusers)
def diffusers_scheduler(name: str, schedule, steps: int):
    """A diffusers scheduler on our ᾱ (its betas), "trailing" spacing so the first step is at t = T."""
    with LOADING:
        from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    betas = (1 - (schedule.abar[1:] / schedule.abar[:-1]) ** 2).float().numpy()
    common = dict(num_train_timesteps=schedule.T, trained_betas=betas, timestep_spacing="trailing")
    if name == "diffusers-ddpm":
        sched = DDPMScheduler(**common, clip_sample=False, variance_type="fixed_small")
    elif name == "diffusers-ddim":
        sched = DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True)
    elif name == "diffusers-dpm-solver++":
        sched = DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2)
    else:
        raise ValueError(f"unknown diffusers scheduler {name!r}; valid: {', '.join(DIFFUSERS_HOT)}")
    sched.set_timesteps(steps)
    return sched


def diffusers_steps(
    model: hp.HotModel, name: str, x_T: torch.Tensor, steps: int, generator: torch.Generator, eta: float = 0.0
) -> Iterator[core.Step]:
    """A diffusers scheduler's loop as udm step records (its t + 1 is our t; x̂_0 from ε as in udm)."""
    sched = diffusers_scheduler(name, model.schedule, steps)
    ts = [int(t) for t in sched.timesteps]
    x = x_T
    for i, td in enumerate(ts):
        t = td + 1
        with torch.no_grad():
            eps = model.posterior.eps(x, t)
            a, b, _, _ = model.schedule.coefficients(t, 0)
            x0_hat = (x - b * eps) / a
            kw = {"eta": eta} if name == "diffusers-ddim" else {}
            x_s = sched.step(eps, td, x, generator=generator, **kw).prev_sample
        if name == "diffusers-ddim":  # DDIM steps to td − T // K, which is off the grid where K ∤ T
            s = max(td - model.schedule.T // steps, -1) + 1
        else:
            s = ts[i + 1] + 1 if i + 1 < len(ts) else 0
        yield core.Step(index=i, t=t, s=s, x_t=x, x0_hat=x0_hat, x_s=x_s)
        x = x_s


def _kept(n_steps: int) -> set[int]:
    if n_steps <= MAX_FRAMES:
        return set(range(n_steps))
    return {round(i * (n_steps - 1) / (MAX_FRAMES - 1)) for i in range(MAX_FRAMES)}


# ---------------------------------------------------------------- udm samplers: batched where they can be
def plan(req: Request, e: Entry, device: str) -> core.Plan:
    """The run of udm sampler e alone, as its process's pipeline makes it (same seed, same x_T)."""
    if req.process == "hot":
        r = hp.HotRequest(data=req.data, sampler=e.sampler, steps=e.steps, n=req.n, seed=req.seed, eta=e.eta)
        return hp.hot_plan(r, device)
    if req.process == "encoding":
        r = ep.EncodingRequest(data=req.data, sampler=e.sampler, steps=e.steps, n=req.n, seed=req.seed, eta=e.eta)
        return ep.encoding_plan(r, device)
    if req.process == "cold":
        degradation, sigma, rule = e.sampler.split(" ")
        r = cp.ColdRequest(
            degradation=degradation, sampler=rule, sigma=float(sigma[2:]), n=req.n, seed=req.seed, data=req.data
        )
        return cp.cold_plan(r, device)
    r = tp.TextRequest(process=req.process, data=req.data, sampler=e.sampler, n=req.n, seed=req.seed)
    return tp.text_plan(r, device)


def views(req: Request) -> tuple[Callable, Callable]:
    """(x_t view, x̂_0 view): model space → what a picture shows (None where x_t is not drawn)."""
    if req.process == "encoding":
        latent = (lambda z: None) if ep.is_words(req.data) else (lambda z: z.float().cpu())
        return latent, lambda x: ep.decode(req.data, x)
    if req.process in ("hot", "cold"):
        view = lambda x: hp.to_data(req.data, x)  # noqa: E731
        return view, view
    vocab = text.vocab(req.data)
    dec = lambda x: vocab.decode(x.cpu())  # noqa: E731
    return dec, dec


def _batched(req: Request, idx: list[int], plans: dict[int, core.Plan], results: list[Result], tick) -> None:
    """Run the udm samplers `idx` (one shared posterior and step grid) as one batch: each step evaluates
    the network once for all of them; a lone sampler runs exactly as it would alone."""
    xt_view, x0_view = views(req)
    run = core.batch([plans[i] for i in idx])
    keep, n, start = _kept(len(run.timesteps)), req.n, time.perf_counter()
    names = ", ".join(req.entries[i].name for i in idx)
    for k, step in enumerate(run.steps()):
        if k in keep:
            for j, i in enumerate(idx):
                part = slice(j * n, (j + 1) * n)
                results[i].frames.append((step.t, xt_view(step.x_t[part]), x0_view(step.x0_hat[part])))
        tick(len(idx), f"{names}: t = {step.t}")
    seconds = time.perf_counter() - start
    for j, i in enumerate(idx):
        r = results[i]
        r.final, r.seconds, r.batched_with = x0_view(step.x_s[j * n : (j + 1) * n]), seconds, len(idx)


def _reference(req: Request, e: Entry, device: str):
    """The step records of a diffusers scheduler on the process's network (the same seed and x_T)."""
    if e.sampler in DIFFUSERS_HOT:
        model = hp.hot_model(req.data, device=device)
        if e.steps > model.schedule.T:
            raise ValueError(f"{e.sampler}: steps must be between 1 and T={model.schedule.T}, got {e.steps}")
        gen = make_generator(req.seed, device)
        x_T = randn((req.n, *data.shape(req.data)), gen)  # as hot_plan draws it
        return diffusers_steps(model, e.sampler, x_T, e.steps, gen, e.eta or 0.0)
    if e.sampler == DIFFUSERS_MASK:
        return amused_steps(req, e.steps, device)
    return discrete_ddim_steps(req, e.steps, e.sampler.endswith("+loo"), device)


def network_evaluations(process: str, name: str, e: Entry) -> int:
    """Network calls of one run of entry e: K for hot samplers and the text schedulers (2K − 1 with the
    leave-one-out corrector), 2K − 1 for encoding (a decoder call per step, an encoder call per step but
    the last), T for cold, l for the udm text samplers."""
    if process == "hot":
        return e.steps
    if process == "encoding" or e.sampler == DIFFUSERS_EDIT[1]:
        return 2 * e.steps - 1
    if process == "cold":
        return cp.cold_T(name)
    if e.sampler in (DIFFUSERS_MASK, DIFFUSERS_EDIT[0]):
        return e.steps
    return text.vocab(name).length


def image_cost(req: Request) -> int:
    """How many images go through a network in all (samples × evaluations, summed over entries): what a
    request costs where a network call on an image dominates (0 for points and words)."""
    image = req.data == "mnist28" or (req.process == "hot" and data.is_image(req.data))
    return req.n * sum(network_evaluations(req.process, req.data, e) for e in req.entries) if image else 0


def amused_steps(req: Request, steps: int, device: str) -> Iterator[core.Step]:
    """diffusers' AmusedScheduler (MaskGIT: draw every hidden token, keep the most confident, re-mask the
    rest on a cosine schedule) over the shipped mask BERT, as udm step records (t = hidden positions)."""
    with LOADING:
        from diffusers import AmusedScheduler

    vocab = text.vocab(req.data)
    model, _ = tp.text_model("mask", req.data, device)
    sched = AmusedScheduler(mask_token_id=vocab.MASK)
    sched.set_timesteps(steps)
    g = make_generator(req.seed + 1, device)
    x = torch.full((req.n, vocab.length), vocab.MASK, device=device)
    for i, ts in enumerate(sched.timesteps):
        with torch.no_grad():
            logits = textmodel.char_logits(model, x, vocab, "mask")
            out = sched.step(logits, ts, x, generator=g)
        t = int((x == vocab.MASK).sum(1).max())
        s = int((out.prev_sample == vocab.MASK).sum(1).max())
        yield core.Step(index=i, t=t, s=s, x_t=x, x0_hat=out.pred_original_sample, x_s=out.prev_sample)
        x = out.prev_sample


def discrete_ddim_steps(req: Request, steps: int, corrector: bool, device: str) -> Iterator[core.Step]:
    """diffusers' DiscreteDDIMScheduler (D3PM uniform corruption; with `corrector`, one leave-one-out Gibbs
    sweep after each step) over the shipped edit BERT, from the same random tokens as the udm samplers.

    Where its assumptions do not fit: D3PM corrupts each position independently with probability 1 − α
    (a binomial number of positions), while the edit model is told an exact count t of replaced positions
    (v1: any replacement token, the uniform kernel). The model is asked at t = round(l (1 − α)), at least 1.
    """
    with LOADING:
        from diffusers import DiscreteDDIMScheduler

    vocab = text.vocab(req.data)
    model, _ = tp.text_model("edit", req.data, device)
    sched = DiscreteDDIMScheduler(corrector_steps=int(corrector), corrector_k=1)
    sched.set_timesteps(steps)
    _, x, _ = tp.start(tp.TextRequest(process="edit", data=req.data, n=req.n, seed=req.seed), device)
    g = make_generator(req.seed + 1, device)
    length = vocab.length

    def logits(x: torch.Tensor, alpha: float) -> torch.Tensor:
        t = min(length, max(1, round(length * (1 - alpha))))
        return textmodel.char_logits(model, x, vocab, "edit-v1", t)

    for i in range(steps):
        t_here = min(length, max(1, round(length * (1 - i / steps))))
        with torch.no_grad():
            out = sched.step(logits(x, i / steps), i, x, temperature=1.0, generator=g)
            x_s = out.prev_sample
            if corrector and i + 1 < steps:
                x_s = sched.step_correct(logits(x_s, (i + 1) / steps), i, x_s, generator=g).prev_sample
        s = 0 if i + 1 == steps else min(length, max(1, round(length * (1 - (i + 1) / steps))))
        yield core.Step(index=i, t=t_here, s=s, x_t=x, x0_hat=out.sampled_tokens, x_s=x_s)
        x = x_s


def _kind(req: Request) -> str:
    """What goes through the posterior network: images, points or words."""
    if req.process in ("mask", "edit") or (req.process == "encoding" and ep.is_words(req.data)):
        return "words"
    return data.kind(req.data) if req.process == "hot" else "images"


def total_steps(req: Request, e: Entry) -> int:
    if e.steps:
        return e.steps
    if req.process == "cold":
        return cp.cold_T(req.data)
    return text.vocab(req.data).length


def run(req: Request, device: str | None = None, progress: Callable[[float, str], None] | None = None) -> list[Result]:
    """Every entry's trajectory, final samples, wall time, network evaluations and figures. udm samplers
    that share a posterior and a step grid run as one batch (on a CPU up to CPU_STACK_LIMIT samples);
    diffusers' schedulers run one after another."""
    device = str(torch.device(device) if device else default_device())
    progress = progress or (lambda f, s: None)
    results = [Result(e, evaluations=network_evaluations(req.process, req.data, e)) for e in req.entries]
    total, done = sum(total_steps(req, e) for e in req.entries), [0]

    def tick(steps: int, what: str) -> None:
        done[0] += steps
        progress(min(1.0, done[0] / total), what)

    # every run is set up before any of them starts (a bad hot or udm request fails here, not halfway)
    reference = {i: _reference(req, e, device) for i, e in enumerate(req.entries) if e.sampler.startswith("diffusers-")}
    plans = {i: plan(req, e, device) for i, e in enumerate(req.entries) if i not in reference}
    limit = CPU_STACK_LIMIT[_kind(req)] if device == "cpu" else None
    groups: list[list[int]] = []
    for i, p in plans.items():
        fits = lambda g: limit is None or (len(g) + 1) * req.n <= limit  # noqa: E731
        group = next((g for g in groups if plans[g[0]].batches_with(p) and fits(g)), None)
        if group is None:
            groups.append([i])
        else:
            group.append(i)
    for idx in groups:
        _batched(req, idx, plans, results, tick)
    xt_view, x0_view = views(req)
    for i, records in reference.items():
        e, r = req.entries[i], results[i]
        start, keep = time.perf_counter(), _kept(total_steps(req, e))
        for k, step in enumerate(records):
            if k in keep:
                r.frames.append((step.t, xt_view(step.x_t), x0_view(step.x0_hat)))
            tick(1, f"{e.name}: t = {step.t}")
        r.final, r.seconds = x0_view(step.x_s), time.perf_counter() - start
    for r in results:
        r.figures = figures(req, r.final)
    return results


def figures(req: Request, final) -> dict[str, float]:
    """The judge's figures; for images fewer than 2 samples get only what can be measured."""
    name = req.data
    if isinstance(final, list):
        return judge.word_scores(name, final)
    if len(final) < 2:
        return {}
    if data.is_image(name) and len(final) < 16:  # too few digits for a Fréchet distance
        return {"distinct": judge.diversity(final)["distinct"] / len(final)}
    return judge.evaluate(name, final)
