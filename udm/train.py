"""Training of ε-prediction networks for hot diffusion, on `accelerate` (one process on the CPU here;
`accelerate launch python -m udm train …` spreads the same command over several GPUs).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from . import checkpoint, data, hot, nets
from .device import default_device
from .schedule import SCHEDULES, make


@dataclass(frozen=True)
class TrainConfig:
    data: str
    steps: int = 8000
    batch_size: int = 512
    lr: float = 1e-3
    warmup: int = 200  # linear warm-up, then cosine decay to 0: stable start, sharp finish in few steps
    ema_decay: float = 0.999  # EMA weights are what ships; they sample far cleaner than the raw ones
    schedule: str = "linear"
    T: int = 1000
    seed: int = 0
    small: bool = False  # a tiny network, for tests
    init: str | None = None  # a hot checkpoint folder whose weights training continues from (same network)
    stats_grid: int = 100  # timesteps at which Analytic-DPM's E‖ε‖²/d is estimated
    stats_per_t: int = 4096  # draws per timestep: many for d = 2, fewer for images (each averages d values)

    def __post_init__(self) -> None:
        data.check_name(self.data)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; valid: {', '.join(SCHEDULES)}")
        if self.steps < 1 or self.batch_size < 1 or self.T < 2:
            raise ValueError("steps and batch_size must be ≥ 1 and T ≥ 2")
        if self.warmup < 0:
            raise ValueError("warmup must be ≥ 0")


# Per-dataset defaults: each trains well inside 45 minutes on 2 CPU cores.
DEFAULTS: dict[str, dict[str, Any]] = {
    "digits8": dict(steps=2500, batch_size=128, lr=1e-3, stats_per_t=1024),
    "mnist28": dict(steps=4000, batch_size=128, lr=1.5e-3, stats_per_t=256),
}


def default_config(name: str, **overrides: Any) -> TrainConfig:
    return replace(TrainConfig(data=name, **DEFAULTS.get(name, {})), **overrides)


def net_config(cfg: TrainConfig) -> dict[str, Any]:
    if data.is_image(cfg.data):
        return {"kind": "unet", **nets.unet_config(data.shape(cfg.data)[-1], small=cfg.small)}
    return {"kind": "mlp", "dim": 2, **(dict(hidden=32, depth=1) if cfg.small else {})}


def _lr_lambda(cfg: TrainConfig):
    def f(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        return 0.5 * (1 + math.cos(math.pi * (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)))

    return f


def _batches(loader: DataLoader):
    while True:
        yield from loader


def fit(
    model: torch.nn.Module,
    loss_fn,
    x0: torch.Tensor,
    cfg,
    desc: str,
    progress: bool = True,
    every: int = 0,
    on_eval=None,
):
    """The shared loop: AdamW, warm-up + cosine decay, gradient clipping, EMA. `loss_fn(model, batch)`.
    With `every` > 0, `on_eval(model, step, seconds)` runs after every `every` steps (and after the last)
    on the EMA weights in eval mode; its time is not counted as training time.

    Returns (the unwrapped model carrying the EMA weights, summary, accelerator)."""
    from accelerate import Accelerator
    from diffusers.training_utils import EMAModel

    acc = Accelerator()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
    loader = DataLoader(TensorDataset(x0), batch_size=min(cfg.batch_size, len(x0)), shuffle=True, drop_last=True)
    model, opt, loader, sched = acc.prepare(model, opt, loader, sched)
    ema = EMAModel(model.parameters(), decay=cfg.ema_decay, use_ema_warmup=True, power=3 / 4)
    ema.to(acc.device)

    start, smooth, batches, paused = time.time(), None, _batches(loader), 0.0
    bar = tqdm(range(cfg.steps), disable=not (progress and acc.is_local_main_process), desc=desc)
    for i in bar:
        (batch,) = next(batches)
        loss = loss_fn(model, batch)
        acc.backward(loss)
        acc.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        ema.step(model.parameters())
        smooth = loss.item() if smooth is None else 0.99 * smooth + 0.01 * loss.item()
        bar.set_postfix(loss=f"{smooth:.4f}")
        if on_eval is not None and every > 0 and ((i + 1) % every == 0 or i + 1 == cfg.steps):
            paused += _evaluate_ema(acc.unwrap_model(model), ema, on_eval, i + 1, time.time() - start - paused)
    seconds = time.time() - start - paused
    summary = {"steps": cfg.steps, "seconds": round(seconds, 1), "final_loss_ema": round(smooth, 5)}
    acc.wait_for_everyone()
    final = acc.unwrap_model(model)
    ema.copy_to(final.parameters())
    summary["parameters"] = sum(p.numel() for p in final.parameters())
    summary["device"] = str(acc.device)
    return final.eval(), summary, acc


def _evaluate_ema(model: torch.nn.Module, ema, on_eval, step: int, seconds: float) -> float:
    """Run `on_eval` on the EMA weights, then put the training weights back; returns the time it took."""
    begun = time.time()
    ema.store(model.parameters())
    ema.copy_to(model.parameters())
    model.eval()
    try:
        with torch.no_grad():
            on_eval(model, step, seconds)
    finally:
        model.train()
        ema.restore(model.parameters())
    return time.time() - begun


def _start(cfg: TrainConfig, net: dict[str, Any]) -> tuple[torch.nn.Module, dict[str, Any] | None]:
    """(the network to train, the training record of the checkpoint it continues, or None)."""
    if cfg.init is None:
        return nets.build(**net), None
    folder = Path(cfg.init)
    if not (folder / "config.json").is_file():
        raise ValueError(f"--init {cfg.init}: not a checkpoint folder (no config.json)")
    saved, before, _ = checkpoint.load(folder)
    model = nets.build(**net)
    # a saved UNet holds its sinusoidal time embedding written out as a table (nets.with_time_table);
    # everything else maps one to one, and the table is recomputed, not learned
    weights = {k: v for k, v in saved.state_dict().items() if k != "unet.time_proj.weight"}
    ours = ("hot", cfg.data, cfg.schedule, cfg.T)
    same_process = tuple(before.get(k) for k in ("process", "data", "schedule", "T")) == ours
    same_network = {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in weights.items()}
    if not (same_process and same_network):
        raise ValueError(f"--init {cfg.init}: its process, data, schedule, T or network differ from this run's")
    model.load_state_dict(weights)
    return model.train(), before["train"]


def train(cfg: TrainConfig, out: Path, *, progress: bool = True) -> dict[str, Any]:
    """Train (from scratch, or on from `cfg.init`'s weights), then save EMA weights, config, Analytic-DPM
    statistics and a model card to `out`."""
    torch.manual_seed(cfg.seed)
    x0 = data.training_set(cfg.data, seed=cfg.seed)
    forward = hot.GaussianForward(make(cfg.schedule, cfg.T))
    net = net_config(cfg)
    start, before = _start(cfg, net)
    model, summary, acc = fit(start, lambda m, b: hot.loss(m, forward, b), x0, cfg, f"train {cfg.data}", progress)
    if acc.is_main_process:
        record = {**asdict(cfg), **summary}
        if before is not None:
            record["init"] = Path(cfg.init).name  # a name, not the path of this machine
            record["before"] = before  # the earlier stage's record (itself nesting any before it)
        config = {
            "process": "hot",
            "data": cfg.data,
            "schedule": cfg.schedule,
            "T": cfg.T,
            "net": net,
            "train": record,
        }
        checkpoint.save(out, model, config)
        write_stats(out, model)
    return summary


def write_stats(
    folder: Path, model: torch.nn.Module | None = None, *, grid: int | None = None, per_t: int | None = None
) -> dict[str, torch.Tensor]:
    """(Re)compute Analytic-DPM's E‖ε_θ‖²/d and Var[x_0] for a checkpoint; save them and the model card.

    `grid` / `per_t` override (and update in config.json) the numbers of timesteps and draws."""
    if model is None:
        model = checkpoint.load(folder, default_device())[0]
    cfg, device = checkpoint.load_config(folder), next(model.parameters()).device
    tr = cfg["train"]
    if grid or per_t:
        tr.update(stats_grid=grid or tr["stats_grid"], stats_per_t=per_t or tr["stats_per_t"])
        checkpoint.save_config(folder, cfg)
    x0 = data.training_set(cfg["data"], seed=tr["seed"]).to(device)
    g = torch.Generator(device=device).manual_seed(tr["seed"] + 1)
    stats = hot.estimate_eps_sq(
        model,
        hot.GaussianForward(make(cfg["schedule"], cfg["T"])),
        x0,
        grid=tr["stats_grid"],
        per_t=tr["stats_per_t"],
        generator=g,
    )
    checkpoint.save_stats(folder, stats)
    checkpoint.write_card(folder)
    return stats


# ---------------------------------------------------------------- cold diffusion: one restorer, several variants
@dataclass(frozen=True)
class ColdTrainConfig:
    """One restoration network G_t for every (degradation, σ) variant, told apart by a class embedding."""

    data: str = "mnist28"
    variants: tuple[tuple[str, float], ...] = (
        ("blur", 0.0),
        ("mask", 0.0),
        ("pixelate", 0.0),
        ("fade", 0.0),
        ("blur", 0.2),
    )
    T: int = 50
    steps: int = 4000
    batch_size: int = 128
    lr: float = 1.5e-3
    warmup: int = 200
    ema_decay: float = 0.999
    seed: int = 0
    small: bool = False

    def __post_init__(self) -> None:
        from . import cold

        data.check_name(self.data, data.IMAGES)
        for name, sigma in self.variants:
            cold.check(name, cold.DEGRADATIONS, "degradation")
            if not 0 <= sigma <= 1:
                raise ValueError(f"σ must be in [0, 1], got {sigma}")
        if self.steps < 1 or self.batch_size < 1 or self.T < 1:
            raise ValueError("steps, batch_size and T must be ≥ 1")


def train_cold(cfg: ColdTrainConfig, out: Path, *, progress: bool = True) -> dict[str, Any]:
    """Train the restorer; save EMA weights, config and a model card to `out`."""
    from . import cold

    torch.manual_seed(cfg.seed)
    x0 = data.training_set(cfg.data, seed=cfg.seed)
    forwards = [cold.ColdForward(cold.Degradation(name, cfg.T), sigma) for name, sigma in cfg.variants]
    net = {
        "kind": "restorer",
        "T": cfg.T,
        "variants": len(cfg.variants),
        **nets.unet_config(data.shape(cfg.data)[-1], small=cfg.small),
    }
    model, summary, acc = fit(
        nets.build(**net), lambda m, b: cold.loss(m, forwards, b), x0, cfg, f"train cold {cfg.data}", progress
    )
    if acc.is_main_process:
        config = {
            "process": "cold",
            "data": cfg.data,
            "T": cfg.T,
            "variants": [{"degradation": name, "sigma": sigma} for name, sigma in cfg.variants],
            "net": net,
            "train": {**asdict(cfg), **summary},
        }
        checkpoint.save(out, model, config)
        checkpoint.write_card(out)
    return summary


# ---------------------------------------------------------------- the encoding model: F and the decoder, jointly


@dataclass(frozen=True)
class EncodingTrainConfig:
    data: str = "mnist28"
    steps: int = 6000
    batch_size: int = 128
    lr: float = 1e-3
    warmup: int = 200
    ema_decay: float = 0.999
    schedule: str = "cosine"
    T: int = 1000
    seed: int = 0
    small: bool = False

    def __post_init__(self) -> None:
        if self.data not in data.ENCODING:
            raise ValueError(f"the encoding model is for {', '.join(data.ENCODING)}, got {self.data!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; valid: {', '.join(SCHEDULES)}")
        if self.steps < 1 or self.batch_size < 1 or self.T < 2:
            raise ValueError("steps and batch_size must be ≥ 1 and T ≥ 2")


ENCODING_DEFAULTS: dict[str, dict[str, Any]] = {
    "mnist28": dict(steps=5000, batch_size=128, lr=1e-3),
    "en5": dict(steps=12000, batch_size=256, lr=1e-3),
}


def encoding_config(name: str, **overrides: Any) -> EncodingTrainConfig:
    return replace(EncodingTrainConfig(data=name, **ENCODING_DEFAULTS.get(name, {})), **overrides)


def encoding_net(name: str, small: bool = False) -> dict[str, Any]:
    from . import text

    if name == "mnist28":
        return nets.encoding_config("image", small=small)
    v = text.vocab(name)
    return nets.encoding_config("words", vocab=v.V, length=v.length, small=small)


def diagnostic_ts(T: int) -> list[int]:
    """t ∈ {1, T/4, T/2, 3T/4, T}: where the reconstruction figures are taken."""
    return sorted({1, T // 4, T // 2, 3 * T // 4, T})


def train_encoding(cfg: EncodingTrainConfig, out: Path, *, progress: bool = True) -> dict[str, Any]:
    """Train F and the decoder together; save EMA weights, config (with diagnostics) and a card to `out`."""
    from . import encoding

    torch.manual_seed(cfg.seed)
    x0 = data.encoding_data(cfg.data)
    forward = hot.GaussianForward(make(cfg.schedule, cfg.T))
    net = encoding_net(cfg.data, cfg.small)
    model, summary, acc = fit(
        nets.build(**net),
        lambda m, b: encoding.loss(m, forward, b),
        x0,
        cfg,
        f"train encoding {cfg.data}",
        progress,
    )
    if acc.is_main_process:
        test = data.encoding_data(cfg.data, "test").to(acc.device)
        config = {
            "process": "encoding",
            "data": cfg.data,
            "schedule": cfg.schedule,
            "T": cfg.T,
            "net": net,
            "train": {**asdict(cfg), **summary},
            "diagnostics": encoding.diagnostics(model, forward, test, diagnostic_ts(cfg.T)),
        }
        checkpoint.save(out, model, config)
        checkpoint.write_card(out)
    return summary
