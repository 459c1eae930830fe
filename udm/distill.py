"""A few-step student distilled from the MNIST ε-model (trajectory distillation), in UDM's terms.

The teacher's deterministic sampler (diffusers' UniPC, `teacher_steps` steps) maps each x_T to a sample
x_0*(x_T), and every state x_t it passes through lies on that path. The student learns a new posterior:
q(x_0 | x_t) = δ(x_0*(x_t)), the end of the teacher's path through x_t, at the teacher's timesteps. Its
network predicts v = ᾱ_t ε − β̄_t x_0 (x̂_0 = ᾱ_t x_t − β̄_t v stays accurate at t = T, where an ε-model's
x̂_0 divides by ᾱ_T ≈ 0.006), trained from the teacher's weights with the loss max(ᾱ_t², β̄_t²)‖v − v*‖²
(truncated-SNR weighting, Salimans & Ho 2022).

Sampling is any hot reverse rule on K of the teacher's timesteps: x̂_0 from the student, then x_s by the
rule. The states a K-step run visits are again draws of q(x_t) only approximately, so the rules differ;
`bench.pareto` measures them.

    python -m udm distill [--seconds 3600] [--out checkpoints/hot-mnist28-distilled]
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from . import checkpoint, core, data, reference
from .device import make_generator, randn

TEACHER_SAMPLER = "diffusers-unipc"  # deterministic, and the best ODE solver of bench.pareto at 10-25 steps


@dataclass(frozen=True)
class DistillConfig:
    teacher: str = "mnist28"  # the shipped hot model distilled
    teacher_steps: int = 20  # the teacher's path: its timesteps are the student's
    paths: int = 6144  # teacher runs (x_T → x_0*), each giving teacher_steps training states
    batch_size: int = 64
    lr: float = 2e-4
    warmup: int = 100
    ema_decay: float = 0.999
    seconds: float = 3600.0  # the training budget (paths excluded)
    max_steps: int = 1_000_000
    eval_every: float = 600.0  # seconds of training between points of the quality curve
    eval_samples: int = 500
    eval_steps: tuple[int, ...] = (1, 2, 4)
    rule: str = "ddim"  # the student's default reverse rule (ddim or ddpm: `bench.pareto` measures both)
    seed: int = 0

    def __post_init__(self) -> None:
        data.check_name(self.teacher, data.IMAGES)
        if self.teacher_steps < 2 or self.paths < 1 or self.batch_size < 1 or self.seconds <= 0:
            raise ValueError("teacher_steps ≥ 2, paths ≥ 1, batch_size ≥ 1 and seconds > 0 are required")
        for k in self.eval_steps:
            grid(list(range(1, self.teacher_steps + 1)), k)
        if self.rule not in ("ddim", "ddpm"):
            raise ValueError(f"the student's rule is ddim or ddpm, got {self.rule!r}")


def grid(times: list[int], K: int) -> list[int]:
    """K of the student's timesteps (increasing): the teacher's, taken evenly from t = T down.

    With the 20 timesteps 50, 100, …, 1000: K = 4 gives 250, 500, 750, 1000; K = 1 the single jump T → 0."""
    if not 1 <= K <= len(times):
        raise ValueError(f"the distilled model takes 1 to {len(times)} steps, got {K}")
    down = sorted(times, reverse=True)
    return sorted({down[round(i * len(down) / K)] for i in range(K)})


@torch.no_grad()
def teacher_paths(model, cfg: DistillConfig, device: torch.device, progress: Callable[[str], None] = print):
    """(timesteps (S,), states (N, S, …) on the teacher's paths, their ends (N, …)) for cfg.paths runs."""
    g = make_generator(cfg.seed, str(device))
    shape = data.shape(cfg.teacher)
    states, ends, ts, start = [], [], None, time.time()
    for i in range(0, cfg.paths, 128):
        x_T = randn((min(128, cfg.paths - i), *shape), g).to(device)
        steps = list(reference.diffusers_steps(model, TEACHER_SAMPLER, x_T, cfg.teacher_steps, g))
        ts = [s.t for s in steps]
        states.append(torch.stack([s.x_t for s in steps], 1).half().cpu())
        ends.append(steps[-1].x_s.clamp(-1, 1).half().cpu())
        progress(f"teacher paths {i + len(x_T)}/{cfg.paths} ({time.time() - start:.0f} s)")
    return torch.tensor(ts), torch.cat(states), torch.cat(ends)


def v_loss(student, schedule, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """max(ᾱ_t², β̄_t²)‖v_θ(x_t, t) − v*‖², v* = (ᾱ_t x_t − x_0*) / β̄_t (so that x_0* = ᾱ_t x_t − β̄_t v*)."""
    view = (-1,) + (1,) * (x_t.dim() - 1)
    a = schedule.abar.to(x_t.device)[t].float().view(view)
    b = schedule.bbar.to(x_t.device)[t].float().view(view)
    target = (a * x_t - x0) / b
    weight = torch.maximum(a, b).pow(2)
    return (weight * (student(x_t, t) - target).pow(2)).mean()


def quality(student, schedule, times: list[int], cfg: DistillConfig, device) -> dict:
    """The judge's Fréchet distance and confident share at each K of cfg.eval_steps (cfg.eval_samples
    samples, seed 0), with the student's own timesteps."""
    from . import hot, judge

    posterior = hot.EpsPosterior(hot.VEps(student, schedule), schedule)
    reverse = hot.make_reverse(cfg.rule, schedule)
    test, clf, out = data.images(cfg.teacher, "test")[0], judge.load_classifier(), {}
    for K in cfg.eval_steps:
        g = make_generator(0, str(device))
        parts = []
        for i in range(0, cfg.eval_samples, 250):
            x_T = randn((min(250, cfg.eval_samples - i), *data.shape(cfg.teacher)), g).to(device)
            plan = core.Plan(posterior, reverse, x_T, tuple(grid(times, K)), g)
            parts.append(((core.last(plan.steps()).x_s.clamp(-1, 1) + 1) / 2).cpu())
        scores = judge.digit_scores(clf, torch.cat(parts), test)
        out[K] = {k: round(v, 4) for k, v in scores.items()}
    return out


def distill(cfg: DistillConfig, out: Path, *, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Build the teacher's paths, train the student within cfg.seconds, save it (a diffusers DDIMPipeline
    with v-prediction, and udm's config.json beside it) with its quality curve, and write its card."""
    from diffusers.training_utils import EMAModel

    from . import hot_pipeline
    from .device import default_device
    from .pipeline import checkpoint_root

    device = torch.device(default_device())
    torch.manual_seed(cfg.seed)
    teacher = hot_pipeline.hot_model(cfg.teacher, device=str(device))
    schedule = teacher.schedule
    start = time.time()
    ts, states, ends = teacher_paths(teacher, cfg, device, progress)
    path_seconds = round(time.time() - start, 1)
    times = ts.tolist()

    student = copy.deepcopy(teacher.posterior.eps_model).train()
    for p in student.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=0.0)
    ema = EMAModel(student.parameters(), decay=cfg.ema_decay, use_ema_warmup=True, power=3 / 4)
    g = torch.Generator().manual_seed(cfg.seed)
    curve, smooth, step, begun, next_eval = [], None, 0, time.time(), cfg.eval_every

    def evaluate(elapsed: float) -> float:
        """A point of the quality curve from the EMA weights; returns the seconds it took (not training)."""
        began = time.time()
        shadow = copy.deepcopy(student).eval()
        ema.copy_to(shadow.parameters())
        figures = quality(shadow, schedule, times, cfg, device)
        curve.append({"seconds": round(elapsed, 1), "steps": step, "quality": figures})
        progress(f"step {step}, {elapsed:.0f} s of training: {figures}")
        return time.time() - began

    while step < cfg.max_steps and (elapsed := time.time() - begun) < cfg.seconds:
        frac = elapsed / cfg.seconds
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * 0.5 * (1 + math.cos(math.pi * frac))
        for group in opt.param_groups:
            group["lr"] = lr
        i = torch.randint(0, len(ends), (cfg.batch_size,), generator=g)
        j = torch.randint(0, len(times), (cfg.batch_size,), generator=g)
        x_t, x0 = states[i, j].float().to(device), ends[i].float().to(device)
        loss = v_loss(student, schedule, x_t, ts[j].to(device), x0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.step(student.parameters())
        smooth = loss.item() if smooth is None else 0.99 * smooth + 0.01 * loss.item()
        step += 1
        if elapsed >= next_eval:
            begun += evaluate(elapsed)  # the clock counts training only
            next_eval += cfg.eval_every
        if step % 100 == 0:
            progress(f"step {step}, {elapsed:.0f} s, loss {smooth:.5f}")
    seconds = round(time.time() - begun, 1)
    ema.copy_to(student.parameters())
    student.eval()
    evaluate(seconds)
    summary = {
        "steps": step,
        "train_seconds": seconds,
        "path_seconds": path_seconds,
        "final_loss_ema": round(smooth, 6),
        "device": str(device),
    }
    teacher_cfg = checkpoint.load_config(checkpoint_root() / f"hot-{cfg.teacher}")
    config = {
        "process": "hot",
        "data": cfg.teacher,
        "schedule": teacher_cfg["schedule"],
        "T": teacher_cfg["T"],
        "net": teacher_cfg["net"],
        "prediction": "v",
        "timesteps": times,
        "sampler": cfg.rule,
        "teacher": {
            "model": f"hot-{cfg.teacher}",
            "sampler": TEACHER_SAMPLER,
            "steps": cfg.teacher_steps,
            "trained_steps": checkpoint.trained_steps(teacher_cfg),
        },
        "train": {**asdict(cfg), **summary},
        "curve": curve,
    }
    checkpoint.save_student(out, student, config)
    write_card(out)
    return summary


def _weights(teacher: dict) -> str:
    """Which of the teacher's weights: a teacher trained on since (`--init`) is not the one distilled."""
    return f" (its weights after {teacher['trained_steps']:,} training steps)" if "trained_steps" in teacher else ""


def write_card(folder: Path) -> None:
    """The student's card: teacher, training, the quality curve against training time, and quality.json's
    figures when `bench.pareto` has written them."""
    import json

    cfg = checkpoint.load_config(folder)
    tr, teacher = cfg["train"], cfg["teacher"]
    lines = [
        f"# {folder.name}",
        "",
        f"A few-step student of `{teacher['model']}`{_weights(teacher)} (trajectory distillation, `udm/distill.py`): "
        "the same UNet, "
        f"trained from the teacher's weights to predict v = ᾱ_t ε − β̄_t x_0 such that x̂_0 is the end of the "
        f"teacher's path through x_t. Teacher: `{teacher['sampler']}` with {teacher['steps']} steps, from "
        f"{tr['paths']:,} draws of x_T. The student runs on K of the teacher's timesteps "
        f"({', '.join(map(str, cfg['timesteps'][:3]))}, …, {cfg['timesteps'][-1]}), K = 1 … {len(cfg['timesteps'])}; "
        f"its default rule is `{cfg['sampler']}`.",
        "",
        "- `model_index.json`, `unet/`, `scheduler/`: diffusers' DDIMPipeline (v-prediction, trailing timesteps): "
        "`DDIMPipeline.from_pretrained(folder)(num_inference_steps=4)` samples it offline.",
        "",
        "## Training",
        "",
        f"- teacher paths: {tr['paths']:,} × {teacher['steps']} states, {tr['path_seconds']} s",
        f"- steps: {tr['steps']} × batch {tr['batch_size']}, AdamW lr {tr['lr']} (warm-up {tr['warmup']}, cosine "
        f"decay over the budget), EMA {tr['ema_decay']}",
        f"- time: {tr['train_seconds']} s of training on `{tr['device']}` (budget {tr['seconds']:g} s); "
        f"final loss (smoothed): {tr['final_loss_ema']}",
        f"- rebuild: `python -m udm distill --seconds {tr['seconds']:g} --paths {tr['paths']} --rule {cfg['sampler']} "
        f"--out checkpoints/{folder.name}`",
        "",
        "## Quality against training time",
        "",
        f"Project judge, {tr['eval_samples']} samples (seed 0), rule `{tr.get('rule', 'ddim')}`, from the EMA "
        "weights at that point of the run (its learning rate still decaying); FD = Fréchet distance to held-out "
        "digits (lower is better), conf. = confident share.",
        "",
        "| training (s) | steps | " + " | ".join(f"K = {k}: FD / conf." for k in tr["eval_steps"]) + " |",
        "| --- | --- | " + " | ".join("---" for _ in tr["eval_steps"]) + " |",
    ]
    for point in cfg["curve"]:
        q = point["quality"]
        cells = [f"{q[str(k)]['frechet']:.1f} / {q[str(k)]['confident']:.2f}" for k in tr["eval_steps"]]
        lines.append(f"| {point['seconds']:.0f} | {point['steps']} | " + " | ".join(cells) + " |")
    quality_file = folder / "quality.json"
    if quality_file.is_file():
        rows = json.loads(quality_file.read_text())["rows"]
        lines += [
            "",
            "## Samples",
            "",
            "| rule | K | Fréchet | confident | s / 16 digits |",
            "| --- | --- | --- | --- | --- |",
            *(
                f"| {r['sampler']} | {r['steps']} | {r['frechet']:.2f} | {r['confident']:.3f} | {r.get('seconds_16', '—')} |"
                for r in rows
            ),
            "",
            "Measured by `python -m bench.pareto --only 'distilled ddim' 'distilled ddpm' --evals 1 2 4 10 20` "
            "(1,000 samples per row; seconds: one 16-digit run on this CPU).",
        ]
    (folder / "README.md").write_text("\n".join(lines) + "\n")
