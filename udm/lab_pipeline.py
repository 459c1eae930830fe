"""The Lab, ready to run: the posterior network and loss a `lab.Spec` implies, training against a time
budget with progress reports (`Training`), a trained process (`Trained`) saved and loaded as a checkpoint
folder (safetensors + JSON), and its registry-style entry `LabProcess` that the CLI and Compare run.

    spec = lab.Spec("gaussians8", ("noise",))
    run = Training(spec, seconds=60)
    for report in run.steps(): ...          # step, seconds, smoothed loss
    trained = run.trained()                 # EMA weights (and Analytic-DPM's statistics where they apply)
    trained.save(folder); Trained.load(folder).sample("improved", n=1000)
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from . import core, hot, judge, lab, nets, textmodel
from .device import make_generator
from .pipeline import MAX_SAMPLES, device_name
from .process import Choice, Process, check_range, check_seed

MAX_SECONDS = 600.0  # one training run's budget, at most
LR = {"points": 1e-3, "images": 2e-3, "words": 1e-3}
BATCH = {"points": 512, "images": 64, "words": 256}
SMALL_IMAGES_BATCH = 128  # 8×8 digits: more readable at 3 min than 64 (python -m bench.lab_width --seeds 3)
WARMUP = 100
EMA_DECAY = 0.999
SLICE = 0.05  # seconds of training steps computed in one go (one main-thread job in the app)
SOFT = 0.5  # words: weight of the exact posterior's marginals over the list as a target (udm.textmodel.loss)


# ---------------------------------------------------------------- 2. the posterior network F implies
def net_config(spec: lab.Spec, small: bool = False) -> dict[str, Any]:
    """A time-MLP for points, diffusers' UNet2DModel for images, a small BertForMaskedLM for words."""
    if spec.kind == "points":
        return {"kind": "mlp", "dim": 2, **(dict(hidden=32, depth=1) if small else dict(hidden=128, depth=3))}
    if spec.kind == "images":
        size = lab.example_shape(spec)[-1]
        unet = nets.unet_config(size, small=small)
        if size <= 14 and not small:  # a budget of minutes is short of steps, not of capacity (bench.lab):
            # no attention (1.5 × the steps) and 16-32 channels (1.8 × more) read better digits at 3 min
            unet.update(
                block_out_channels=(16, 32),
                down_block_types=("DownBlock2D",) * 2,
                up_block_types=("UpBlock2D",) * 2,
            )
        return {"kind": "unet", "t_scale": max(1, 1000 // spec.steps_T), **unet}
    v = lab.vocab(spec)
    width = 128 if spec.data == "en5" else 64
    return {
        "kind": "bert",
        "vocab_size": textmodel.n_special(v.length) + v.V,
        "positions": v.length + (spec.forward == ("edit",)),
        **nets.bert_size(small, width, 2),
    }


def parametrization(spec: lab.Spec) -> str:
    """eps: the network predicts ε (noise alone, as hot diffusion); residual: x̂_0 = x_t + net(x_t, t)
    (any other continuous F, as cold diffusion's restorer); logits: per-position letters (words)."""
    if spec.kind == "words":
        return "logits"
    return "eps" if spec.gaussian and not spec.degradations else "residual"


@dataclass(frozen=True, eq=False)
class ResidualPosterior:
    """x̂_0 = x_t + net(x_t, t): the mean of q(x_0|x_t) (L2 loss) or its median (L1, noise-free F)."""

    net: torch.nn.Module

    def __call__(self, x_t: torch.Tensor, t: int) -> torch.Tensor:
        return x_t + self.net(x_t, torch.full((x_t.shape[0],), t, device=x_t.device, dtype=torch.long))


def posterior(spec: lab.Spec, net: torch.nn.Module, sampler: str = "improved"):
    """q(x_0|x_t) from the network (edit: the any-letter posterior for naive, the different-letter one for
    improved, as `udm.text_pipeline`)."""
    kind = parametrization(spec)
    if kind == "eps":
        return hot.EpsPosterior(net, lab.forward_of(spec).schedule)
    if kind == "residual":
        return ResidualPosterior(net)
    variant = "mask" if spec.forward == ("mask",) else ("edit-v1" if sampler == "naive" else "edit-v2")
    return textmodel.NeuralPosterior(net, lab.vocab(spec), variant)


def loss_fn(spec: lab.Spec, x0_all: torch.Tensor):
    """(net, batch) → loss. eps: ‖ε − ε_θ‖²; residual: ‖x_0 − x̂_0‖² with noise in F (the posterior mean),
    ‖x_0 − x̂_0‖₁ without (cold diffusion's); words: cross-entropy, half on the exact posterior's marginals."""
    fwd = lab.forward_of(spec)
    kind = parametrization(spec)
    if kind == "eps":
        gauss = hot.GaussianForward(fwd.schedule)
        return lambda net, x0: hot.loss(net, gauss, x0)
    if kind == "residual":
        noisy = spec.gaussian or spec.sigma > 0

        def residual(net, x0):
            t = torch.randint(1, fwd.T + 1, (x0.shape[0],), device=x0.device)
            x_t = fwd.sample(x0, t, torch.randn_like(x0))
            err = x_t + net(x_t, t) - x0
            return err.pow(2).mean() if noisy else err.abs().mean()

        return residual
    from . import discrete

    v = lab.vocab(spec)
    prior = torch.full((len(x0_all),), 1.0 / len(x0_all))
    exact = {k: discrete.ExactPosterior(x0_all, prior, k, mask=v.MASK) for k in ("mask", "edit-v1", "edit-v2")}
    process = spec.forward[0]
    return lambda net, x0: textmodel.loss(net, x0, v, process, SOFT, exact.__getitem__)


# ---------------------------------------------------------------- training against a time budget
def batch_size(spec: lab.Spec) -> int:
    if spec.kind == "images" and lab.example_shape(spec)[-1] <= 8:
        return SMALL_IMAGES_BATCH
    return BATCH[spec.kind]


@dataclass(frozen=True)
class Report:
    step: int
    seconds: float
    loss: float  # smoothed (EMA 0.95 of the batch losses)
    done: bool = False


class Training:
    """One training run of a spec's posterior: AdamW, a short warm-up, then a cosine decay over the time
    budget, gradient clipping, EMA weights. `steps()` trains and reports; `trained()` is the result so far."""

    def __init__(self, spec: lab.Spec, *, seconds: float, seed: int = 0, small: bool = False, device=None):
        check_range(seconds, "training seconds", 1.0, MAX_SECONDS)
        check_seed(seed)
        from diffusers.training_utils import EMAModel

        self.spec, self.seconds, self.seed, self.small = spec, float(seconds), seed, small
        self.device = torch.device(device_name(device))
        torch.manual_seed(seed)
        self.x0 = lab.training_data(spec).to(self.device)
        self.config = net_config(spec, small)
        self.net = nets.build(**copy.deepcopy(self.config)).to(self.device).train()
        self.loss = loss_fn(spec, self.x0)
        # one list of the parameters, updated tensor by tensor in batches (foreach): a step of a small
        # network is otherwise half Python, walking its modules and its parameters one at a time
        self.params = list(self.net.parameters())
        self.opt = torch.optim.AdamW(self.params, lr=LR[spec.kind], weight_decay=0.0, foreach=True)
        self.ema = EMAModel(self.params, decay=EMA_DECAY, use_ema_warmup=True, power=3 / 4, foreach=True)
        self.step, self.elapsed, self.smooth = 0, 0.0, None
        self.history: list[tuple[int, float, float]] = []  # (step, seconds, smoothed loss)
        self.batch = min(batch_size(spec), 4 * len(self.x0))
        self.g = torch.Generator(device=self.device).manual_seed(seed)

    def _lr(self, elapsed: float) -> float:
        warm = min(1.0, (self.step + 1) / WARMUP)
        return LR[self.spec.kind] * warm * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / self.seconds)))

    @torch.enable_grad()  # whatever the thread it runs on was doing
    def _train_for(self, seconds: float) -> float:
        """Optimiser steps for about `seconds` (at least one; the last may end past the budget); the time
        they took."""
        begin = time.perf_counter()
        spent = 0.0
        while self.elapsed + spent < self.seconds:
            idx = torch.randint(0, len(self.x0), (self.batch,), generator=self.g, device=self.device)
            for group in self.opt.param_groups:
                group["lr"] = self._lr(self.elapsed + spent)
            loss = self.loss(self.net, self.x0[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, 1.0, foreach=True)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            self.ema.step(self.params)
            self.step += 1
            self.smooth = loss.item() if self.smooth is None else 0.95 * self.smooth + 0.05 * loss.item()
            spent = time.perf_counter() - begin
            if spent >= seconds:
                break
        return spent

    def steps(
        self, stop: threading.Event | None = None, every: float = 0.5, run: Callable[..., float] | None = None
    ) -> Iterator[Report]:
        """Train until the budget is spent or `stop` is set, reporting every `every` seconds and at the end.
        The budget counts training time only: while the caller holds a report (e.g. to draw previews from
        `trained()`), the clock stands still. `run(fn, seconds)` computes each slice of SLICE seconds of
        steps (default: here; the Lab tab hands them to the main thread, `udm.app.mainthread`)."""
        run = run or (lambda fn, seconds: fn(seconds))
        last = -every
        while self.elapsed < self.seconds and not (stop is not None and stop.is_set()):
            self.elapsed += run(self._train_for, min(SLICE, every))
            if self.elapsed - last >= every:
                last = self.elapsed
                self.history.append((self.step, round(self.elapsed, 2), self.smooth))
                yield Report(self.step, self.elapsed, self.smooth)
        self.history.append((self.step, round(self.elapsed, 2), self.smooth))
        yield Report(self.step, self.elapsed, self.smooth if self.smooth is not None else float("nan"), done=True)

    def trained(self, with_stats: bool = True) -> Trained:
        """The process with the EMA weights so far (a copy; training may go on). `with_stats`: estimate
        Analytic-DPM's E‖ε_θ‖²/d where the rule applies (a few seconds)."""
        net = nets.build(**copy.deepcopy(self.config)).to(self.device)
        self.ema.copy_to(net.parameters())
        summary = {
            "steps": self.step,
            "seconds": round(self.elapsed, 1),
            "budget_seconds": self.seconds,
            "final_loss_ema": None if self.smooth is None else round(self.smooth, 5),
            "batch_size": self.batch,
            "lr": LR[self.spec.kind],
            "seed": self.seed,
            "parameters": sum(p.numel() for p in net.parameters()),
            "device": str(self.device),
            "loss_curve": [list(h) for h in self.history[-200:]],
        }
        t = Trained(self.spec, net.eval(), self.config, {}, summary)
        if with_stats and "analytic-ddpm" in lab.rules(self.spec):
            t.stats = analytic_stats(self.spec, t.net, self.x0, self.seed)
        return t


@torch.no_grad()
def analytic_stats(spec: lab.Spec, net, x0: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    fwd = lab.forward_of(spec)
    per_t = 1024 if spec.kind == "points" else 32
    g = make_generator(seed + 1, x0.device)
    return hot.estimate_eps_sq(
        net, hot.GaussianForward(fwd.schedule), x0, grid=min(40, fwd.T), per_t=per_t, generator=g
    )


# ---------------------------------------------------------------- a trained process
@dataclass(eq=False)
class Trained:
    spec: lab.Spec
    net: torch.nn.Module
    config: dict[str, Any]  # the network's description (nets.build)
    stats: dict[str, torch.Tensor] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    _posteriors: dict[str, Any] = field(default_factory=dict, repr=False)  # one per variant, so runs batch

    def posterior(self, sampler: str):
        """q(x_0|x_t) for a rule: one object per variant, so that rules sharing it run as one batch."""
        key = ("v1" if sampler == "naive" else "v2") if self.spec.forward == ("edit",) else ""
        if key not in self._posteriors:
            self._posteriors[key] = posterior(self.spec, self.net, sampler)
        return self._posteriors[key]

    def plan(self, sampler: str, n: int, seed: int = 0, steps: int | None = None) -> core.Plan:
        device = next(self.net.parameters()).device
        g = make_generator(seed, device)
        post = self.posterior(sampler)
        return lab.plan(self.spec, post, sampler, n, g, steps=steps, stats=self.stats or None)

    def sample(self, sampler: str = "improved", n: int = 16, seed: int = 0, steps: int | None = None):
        """n final samples in data space (points, images in [0, 1], or strings)."""
        return lab.to_data(self.spec, core.last(self.plan(sampler, n, seed, steps).steps()).x_s)

    def save(self, folder: Path, figures: dict[str, dict[str, float]] | None = None) -> None:
        """model.safetensors, config.json (spec, network, training), spec.json, stats.safetensors (where
        Analytic-DPM applies), a model card and a snippet that rebuilds the process with udm."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_model(self.net, str(folder / "model.safetensors"))
        if self.stats:
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in self.stats.items()}, str(folder / "stats.safetensors")
            )
        config = {"process": "lab", "spec": self.spec.to_dict(), "net": self.config, "train": self.summary}
        if figures:
            config["figures"] = figures
        (folder / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        (folder / "spec.json").write_text(json.dumps(self.spec.to_dict(), ensure_ascii=False) + "\n")
        (folder / "rebuild.py").write_text(snippet(self.spec))
        (folder / "README.md").write_text(card(config))

    @classmethod
    def load(cls, folder: Path, device: str | None = None) -> Trained:
        """A Lab checkpoint folder (weights read with safetensors only)."""
        folder = Path(folder)
        file = folder / "config.json"
        if not file.is_file():
            raise FileNotFoundError(f"no checkpoint at {folder} (config.json missing)")
        config = json.loads(file.read_text())
        if config.get("process") != "lab":
            raise ValueError(f"{folder} is not a Lab checkpoint (process {config.get('process')!r})")
        spec = lab.Spec.from_dict(config["spec"])
        net = nets.build(**copy.deepcopy(config["net"]))
        load_model(net, str(folder / "model.safetensors"))
        stats_file = folder / "stats.safetensors"
        stats = load_file(str(stats_file)) if stats_file.is_file() else {}
        net = net.to(device_name(device)).eval()
        return cls(spec, net, config["net"], stats, config.get("train", {}))


# ---------------------------------------------------------------- the judge's figures for Lab samples
def figures(spec: lab.Spec, final) -> dict[str, float]:
    """Words: valid (in the list; en5: the full English list), distinct, and for en5 novel-valid (never
    trained on). Points: sliced Wasserstein distance to the data (gaussians8: also the modes covered).
    Images: distinct share, and with 16 or more the judge's figures (mnist14: on both sides upsampled)."""
    if spec.kind == "words":
        if spec.data == "en5":
            return judge.word_scores("en5", final)
        words, n = set(spec.words), max(1, len(final))
        return {"valid": sum(w in words for w in final) / n, "distinct": len(set(final)) / n}
    if len(final) < 2:
        return {}
    if spec.kind == "points":
        if spec.data == "drawing":
            ref = torch.tensor(spec.points, dtype=torch.float32)
            return {"sliced_wasserstein": judge.sliced_wasserstein(final, ref)}
        out = judge.evaluate(spec.data, final)
        if spec.data == "gaussians8":
            out["modes"] = float(modes_covered(final))
        return out
    out = {"distinct": judge.diversity(final)["distinct"] / len(final)}
    if len(final) < 16:
        return out
    if spec.data == "mnist14":
        from . import data

        up = lambda x: torch.nn.functional.interpolate(x, size=28, mode="bilinear").clamp(0, 1)  # noqa: E731
        test = torch.nn.functional.avg_pool2d(data.images("mnist28", "test")[0], 2)
        out.update(judge.digit_scores(judge.load_classifier(), up(final), up(test)))
        return out
    return {**judge.evaluate(spec.data, final), **out}


def modes_covered(x: torch.Tensor) -> int:
    """How many of gaussians8's modes hold at least a quarter of their share of the points within 3 σ."""
    from . import data

    mix = data.gaussians8()
    d = torch.cdist(x.double(), mix.means)
    near = d.min(1).values < 3 * 0.2
    counts = torch.bincount(d.argmin(1)[near], minlength=8)
    return int((counts >= 0.25 * len(x) / 8).sum())


# ---------------------------------------------------------------- the card and the snippet
def snippet(spec: lab.Spec) -> str:
    return f'''"""Rebuild this Lab process with udm (pip install -r requirements.txt in the udm repository)."""
from pathlib import Path

from udm import lab, lab_pipeline

here = Path(__file__).parent
spec = lab.Spec.from_json((here / "spec.json").read_text())  # {spec.name}
print("forward:", "+".join(spec.forward), "| rules:", ", ".join(lab.rules(spec)))

trained = lab_pipeline.Trained.load(here)  # the posterior network, from safetensors
for rule in lab.rules(spec):
    samples = trained.sample(rule, n=16, seed=0)
    print(rule, lab_pipeline.figures(spec, samples))

# train it again from scratch: lab_pipeline.Training(spec, seconds=60), or
#   python -m udm lab --spec spec.json --seconds 60 --out again
'''


def card(config: dict[str, Any]) -> str:
    spec, tr = lab.Spec.from_dict(config["spec"]), config["train"]
    lines = [
        f"# Lab: {spec.name}",
        "",
        f"Forward: {' then '.join(f'{b} ({lab.BLOCKS[b].what})' for b in spec.forward)}; T = {spec.steps_T}"
        + (f", {spec.schedule} schedule" if spec.gaussian else "")
        + (f", σ = {spec.sigma:g}" if spec.sigma else "")
        + ".",
        f"Posterior: `{config['net']['kind']}` ({tr.get('parameters', 0):,} parameters, EMA weights), "
        f"parametrized as {parametrization(spec)}.",
        f"Rules: {', '.join(lab.rules(spec))}.",
        "",
        f"Training: {tr.get('steps')} steps × batch {tr.get('batch_size')} in {tr.get('seconds')} s on "
        f"`{tr.get('device')}` (budget {tr.get('budget_seconds')} s), seed {tr.get('seed')}; final loss "
        f"(smoothed) {tr.get('final_loss_ema')}.",
        "",
        "Sample: `python -m udm sample --checkpoint DIR --sampler improved -n 16 --out samples.npz`",
    ]
    figs = config.get("figures")
    if figs:
        keys = sorted({k for f in figs.values() for k in f})
        lines += ["", "| rule | " + " | ".join(keys) + " |", "|" + " --- |" * (len(keys) + 1)]
        for rule, f in figs.items():
            lines.append(f"| {rule} | " + " | ".join(f"{f[k]:.3f}" if k in f else "—" for k in keys) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- as a process of the library
@dataclass(frozen=True)
class LabRequest:
    data: str
    sampler: str = "improved"
    steps: int | None = None  # points and images: K ≤ T (default 50 with noise, T without)
    n: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be ≥ 1, got {self.steps}")
        if self.n < 1:
            raise ValueError(f"the number of samples must be ≥ 1, got {self.n}")


class LabProcess(Process):
    """A trained Lab process as one more process: the CLI's `sample --checkpoint` and Compare run it."""

    name = "lab"
    title = "a forward process composed in the Lab"
    Request = LabRequest

    def __init__(self, trained: Trained):
        self.trained = trained
        self.spec = trained.spec
        self.default_data = trained.spec.data

    def datasets(self) -> tuple[str, ...]:
        return (self.spec.data,)

    def kind(self, data_name: str) -> str:
        return self.spec.kind

    def choices(self, data_name: str) -> tuple[Choice, ...]:
        return tuple(Choice(r, steps=self.spec.kind != "words") for r in lab.rules(self.spec))

    def request(self, **fields_: Any) -> LabRequest:
        req = super().request(**fields_)
        if req.data != self.spec.data:
            raise ValueError(f"this Lab process was trained on {self.spec.data}, not {req.data}")
        check_range(req.n, "number of samples", 1, self.max_samples(req.data))
        if req.steps is not None and self.spec.kind == "words":
            raise ValueError("words take one step per position; leave steps out")
        return req

    def plan(self, req: LabRequest, device: str | None = None) -> core.Plan:
        return self.trained.plan(req.sampler, req.n, req.seed, req.steps)

    def total_steps(self, choice, data_name, steps):
        return len(lab.timesteps(self.spec, choice.sampler, steps))

    def decode(self, data_name: str, x: torch.Tensor):
        return lab.to_data(self.spec, x)

    def figures(self, data_name: str, final) -> dict[str, float]:
        return figures(self.spec, final)

    def max_samples(self, data_name: str) -> int:
        return MAX_SAMPLES[self.spec.kind]


def default_figures(trained: Trained, seed: int = 0) -> dict[str, dict[str, float]]:
    """Every rule's figures on a quick batch (points 1,000, images 64, words 500), default steps."""
    n = {"points": 1000, "images": 64, "words": 500}[trained.spec.kind]
    out = {}
    for rule in lab.rules(trained.spec):
        f = figures(trained.spec, trained.sample(rule, n, seed))
        out[rule] = {k: round(v, 4) for k, v in f.items()}
    return out
