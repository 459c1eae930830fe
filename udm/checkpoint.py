"""Checkpoints on disk: a folder with `model.safetensors`, `config.json`, optional `stats.safetensors`
(per-model statistics such as Analytic-DPM's E‖ε_θ‖²/d) and a model card `README.md`.

A hot image model is saved as diffusers' `DDPMPipeline` instead of `model.safetensors` (`model_index.json`,
`unet/`, `scheduler/`), so `DDPMPipeline.from_pretrained(folder)` opens and samples it; udm's
`config.json`, statistics and card sit beside them.

Weights are read only with safetensors: nothing here unpickles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from . import nets

ROOT = Path(__file__).resolve().parent.parent / "checkpoints"


def path(name: str) -> Path:
    return ROOT / name


PIPELINE_WEIGHTS = Path("unet") / "diffusion_pytorch_model.safetensors"


def save(folder: Path, model: nn.Module, config: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(model, nets.UNet) and config.get("process") == "hot":
        save_pipeline(folder, model, config)
        return
    save_model(model, str(folder / "model.safetensors"))  # drops the copies of tied weights
    save_config(folder, config)


def _save_diffusers(folder: Path, model: nets.UNet, config: dict[str, Any], pipeline: str, **scheduler: Any) -> None:
    """`model` as the diffusers pipeline named (its UNet with the time embedding as a table, see
    `nets.with_time_table`; the matching scheduler on the model's own β_t, "trailing" timesteps), and
    `config` as udm's config.json beside it."""
    import diffusers
    from diffusers.utils import logging

    from .schedule import make

    T = config["T"]
    Pipeline = getattr(diffusers, f"{pipeline}Pipeline")
    sched = getattr(diffusers, f"{pipeline}Scheduler")(
        num_train_timesteps=T,
        trained_betas=make(config["schedule"], T).betas.float().numpy(),
        timestep_spacing="trailing",
        **scheduler,
    )
    folder.mkdir(parents=True, exist_ok=True)
    logging.disable_progress_bar()
    Pipeline(unet=nets.with_time_table(model, T).unet, scheduler=sched).save_pretrained(folder, safe_serialization=True)
    save_config(folder, config)


def save_pipeline(folder: Path, model: nets.UNet, config: dict[str, Any]) -> None:
    """A hot image model as diffusers' DDPMPipeline (`_save_diffusers`), its config's net as saved."""
    T = config["T"]
    net = {k: v for k, v in config["net"].items() if k != "t_scale"}
    config = {**config, "net": {**net, "time_embedding_type": "learned", "num_train_timesteps": T}}
    _save_diffusers(folder, model, config, "DDPM", variance_type="fixed_small", clip_sample=True)  # data in [-1, 1]
    (folder / "model.safetensors").unlink(missing_ok=True)


def save_student(folder: Path, model: nets.UNet, config: dict[str, Any]) -> None:
    """A distilled v-prediction model as diffusers' DDIMPipeline (with K steps where K divides the
    student's grid, diffusers visits exactly udm's timesteps); x̂_0 unclipped, as udm uses it."""
    _save_diffusers(
        folder, model, config, "DDIM", prediction_type="v_prediction", clip_sample=False, set_alpha_to_one=True
    )


def save_config(folder: Path, config: dict[str, Any]) -> None:
    (folder / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def save_stats(folder: Path, stats: dict[str, torch.Tensor]) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in stats.items()}, str(folder / "stats.safetensors"))


def load_config(folder: Path) -> dict[str, Any]:
    file = folder / "config.json"
    if not file.is_file():
        raise FileNotFoundError(f"no checkpoint at {folder} (config.json missing); build it with `python -m udm train`")
    return json.loads(file.read_text())


def load(folder: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any], dict[str, torch.Tensor]]:
    """(network in eval mode on `device`, config, stats) of a checkpoint folder."""
    config = load_config(folder)
    model = nets.build(**config["net"])
    if (folder / PIPELINE_WEIGHTS).is_file():
        model.unet.load_state_dict(load_file(str(folder / PIPELINE_WEIGHTS)))
    else:
        load_model(model, str(folder / "model.safetensors"))
    stats_file = folder / "stats.safetensors"
    stats = load_file(str(stats_file)) if stats_file.is_file() else {}
    return model.to(device).eval(), config, stats


def write_card(folder: Path) -> None:
    """(Re)write the model card from config.json, plus quality.json and samples.png when present."""
    cfg = load_config(folder)
    tr = cfg.get("train", {})
    if cfg["process"] == "cold":
        variants = ", ".join(f"{v['degradation']} (σ = {v['sigma']})" for v in cfg["variants"])
        head = (
            f"Cold diffusion on `{cfg['data']}`, T = {cfg['T']}: one restoration network G_t "
            f"(`{cfg['net']['kind']}`, {tr.get('parameters', '?'):,} parameters, EMA weights) for the variants "
            f"{variants}, told apart by a class embedding. Loss: L1 ‖x_0 − G_t(F_t(x_0) + σ ε)‖₁."
        )
        rebuild, extra = "python -m udm train --process cold", []
    elif cfg["process"] == "encoding":
        head = (
            f"The encoding model on `{cfg['data']}`: an encoder F and a decoder of q(x_0 | x_t), trained together "
            f"on −log q(x_0 | ᾱ_t F(x_0) + β̄_t ε) ({'L2' if cfg['net']['kind'] == 'image' else 'cross-entropy'}); "
            f"F's output has unit RMS ({'per example' if cfg['net']['kind'] == 'image' else 'per position'}); "
            f"{cfg['schedule']} schedule, T = {cfg['T']}; {tr.get('parameters', '?'):,} parameters, EMA weights."
        )
        rebuild = f"python -m udm train --process encoding --data {cfg['data']}"
        extra = diagnostics_lines(cfg.get("diagnostics"))
    else:
        head = (
            f"{cfg['process']} diffusion on `{cfg['data']}`; {cfg['schedule']} schedule, T = {cfg['T']}; "
            f"network `{cfg['net']['kind']}` with {tr.get('parameters', '?'):,} parameters; EMA weights."
        )
        rebuild = f"python -m udm train --data {cfg['data']}"
        extra = []
        if (folder / PIPELINE_WEIGHTS).is_file():
            extra.append(
                "- `model_index.json`, `unet/`, `scheduler/`: the model as diffusers' DDPMPipeline "
                "(`DDPMPipeline.from_pretrained(folder)` samples it; the UNet's time embedding is a table whose "
                "row td holds udm's t = td + 1, so diffusers computes what udm does)."
            )
        extra += [
            "- `stats.safetensors`: Analytic-DPM's Monte-Carlo E‖ε_θ(x_t, t)‖²/d for t = 0..T "
            f"({tr.get('stats_grid')} timesteps × {tr.get('stats_per_t')} draws, interpolated) and Var[x_0]."
        ]
    stages, out = _stages(tr), f"--out checkpoints/{folder.name}"
    lines = [
        f"# {folder.name}",
        "",
        head,
        "",
        "## Training",
        "",
        f"- data: `{cfg['data']}` (training split; see `udm/data.py`)",
    ]
    for i, st in enumerate(stages):
        then = f"stage {i + 1}: " if len(stages) > 1 else ""
        lines += [
            f"- {then}steps: {st.get('steps')} × batch {st.get('batch_size')}, AdamW lr {st.get('lr')} "
            f"(warm-up {st.get('warmup')}, cosine decay), EMA {st.get('ema_decay')}"
            + (f", from stage {i}'s EMA weights" if i else ""),
            f"- {then}time: {st.get('seconds')} s on `{st.get('device')}`; "
            f"final loss (smoothed): {st.get('final_loss_ema')}",
        ]
    continued = [
        f"{rebuild} --init checkpoints/{folder.name} --steps {st['steps']} --lr {st['lr']} --warmup {st['warmup']} {out}"
        for st in stages[1:]
    ]
    lines += [f"- rebuild: `{' && '.join([f'{rebuild} {out}', *continued])}`", *extra]
    quality = folder / "quality.json"
    if quality.is_file():
        q = json.loads(quality.read_text())
        lines += ["", "## Quality"]
        for table in q.get("tables", [q]):  # one table, or several with titles
            if table.get("title"):
                lines += ["", f"### {table['title']}"]
            lines += [
                "",
                table.get("note", ""),
                "",
                "| " + " | ".join(table["columns"]) + " |",
                "|" + " --- |" * len(table["columns"]),
            ]
            lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table["rows"]]
        if q.get("command"):
            lines += ["", f"Measured by `{q['command']}`."]
    if (folder / "samples.png").is_file():
        lines += ["", "![samples](samples.png)"]
    (folder / "README.md").write_text("\n".join(lines) + "\n")


def trained_steps(config: dict[str, Any]) -> int:
    """A checkpoint's training steps (its config.json), over every stage (`--init` continues an earlier run)."""
    return sum(int(st.get("steps", 0)) for st in _stages(config.get("train", {})))


def _stages(tr: dict[str, Any]) -> list[dict[str, Any]]:
    """The training records of a checkpoint, oldest first (a run continued with `--init` nests the earlier)."""
    return [*_stages(tr["before"]), tr] if "before" in tr else [tr]


def diagnostics_lines(diag: dict[str, Any] | None, heading: str = "## Diagnostics (held-out data)") -> list[str]:
    """The encoding model's diagnostics (held-out data) as Markdown lines: latent RMS, and per t the loss
    and the decoder's accuracy (for words, the accuracy at t = 1 is the "rounding" accuracy)."""
    if not diag:
        return []
    rows = diag["per_t"]
    cols = list(next(iter(rows.values())))
    rounding = rows.get("1", {}).get("char_accuracy")
    return [
        "",
        heading,
        "",
        f"Latent RMS {diag['latent_rms']} (largest deviation of one example from 1: "
        f"{diag['latent_rms_per_example_max_dev']}); spread of F over the data {diag['latent_std_over_data']}. "
        "Reconstruction: encode, noise to t, decode"
        + (
            f"; rounding accuracy (characters decoded right from x_1, how well q(x_0|x_t) maps a latent back to "
            f"tokens): {rounding}."
            if rounding is not None
            else "."
        ),
        "",
        "| t | " + " | ".join(cols) + " |",
        "|" + " --- |" * (len(cols) + 1),
        *["| " + t + " | " + " | ".join(str(r[c]) for c in cols) + " |" for t, r in rows.items()],
    ]
