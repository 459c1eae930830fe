"""Checkpoints on disk: a folder with `model.safetensors`, `config.json`, optional `stats.safetensors`
(per-model statistics such as Analytic-DPM's E‖ε_θ‖²/d) and a model card `README.md`.

Weights are read only with safetensors: nothing here unpickles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from . import nets

ROOT = Path(__file__).resolve().parent.parent / "checkpoints"


def path(name: str) -> Path:
    return ROOT / name


def save(folder: Path, model: nn.Module, config: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    save_config(folder, config)


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
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
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
    else:
        head = (
            f"{cfg['process']} diffusion on `{cfg['data']}`; {cfg['schedule']} schedule, T = {cfg['T']}; "
            f"network `{cfg['net']['kind']}` with {tr.get('parameters', '?'):,} parameters; EMA weights."
        )
        rebuild = f"python -m udm train --data {cfg['data']}"
        extra = [
            "- `stats.safetensors`: Analytic-DPM's Monte-Carlo E‖ε_θ(x_t, t)‖²/d for t = 0..T "
            f"({tr.get('stats_grid')} timesteps × {tr.get('stats_per_t')} draws, interpolated) and Var[x_0]."
        ]
    lines = [
        f"# {folder.name}",
        "",
        head,
        "",
        "## Training",
        "",
        f"- data: `{cfg['data']}` (training split; see `udm/data.py`)",
        f"- steps: {tr.get('steps')} × batch {tr.get('batch_size')}, AdamW lr {tr.get('lr')} "
        f"(warm-up {tr.get('warmup')}, cosine decay), EMA {tr.get('ema_decay')}",
        f"- time: {tr.get('seconds')} s on `{tr.get('device')}`; final loss (smoothed): {tr.get('final_loss_ema')}",
        f"- rebuild: `{rebuild} --out checkpoints/{folder.name}`",
        *extra,
    ]
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
