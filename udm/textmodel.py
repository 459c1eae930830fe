"""The text posteriors: `transformers.BertForMaskedLM` built from a small `BertConfig` (no download),
trained from scratch on a word list, saved with `save_pretrained` (safetensors) and reloaded offline.

Input ids: 0 = [MASK]; 1..l+1 = [E0..El], the edit-v2 time tokens; l+2..2l+2 = [A0..Al], the edit-v1
time tokens; then the characters. The mask model reads x_t alone (the masks show t); the edit model
reads [time token] + x_t, so it knows t and which forward process (v1 any-token, v2 different-token)
made x_t. Only the character logits are used.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as nnf

from . import discrete, text

PROCESSES: tuple[str, ...] = ("mask", "edit")


def n_special(length: int) -> int:
    return 1 + 2 * (length + 1)


def time_token(length: int, t: torch.Tensor | int, variant: str) -> torch.Tensor | int:
    """The id of the edit model's time token for t under edit-v1 or edit-v2."""
    return (1 if variant == "edit-v2" else length + 2) + t


def input_ids(x_t: torch.Tensor, vocab: text.Vocab, variant: str, t: torch.Tensor | int = 0) -> torch.Tensor:
    """(B, l) tokens → (B, l) or (B, l + 1) model ids."""
    ns = n_special(vocab.length)
    ids = torch.where(x_t == vocab.MASK, torch.zeros_like(x_t), x_t + ns)
    if variant == "mask":
        return ids
    tok = torch.as_tensor(time_token(vocab.length, t, variant), device=x_t.device).expand(x_t.shape[0])
    return torch.cat([tok.view(-1, 1), ids], 1)


def char_logits(model, x_t: torch.Tensor, vocab: text.Vocab, variant: str, t: torch.Tensor | int = 0) -> torch.Tensor:
    """(B, l, V) logits over the characters at each position."""
    ids = input_ids(x_t, vocab, variant, t)
    logits = model(input_ids=ids).logits
    if variant != "mask":
        logits = logits[:, 1:]
    return logits[..., n_special(vocab.length) :]


@dataclass(frozen=True)
class NeuralPosterior:
    """q(x_0 | x_t) from the network: independent categoricals per position."""

    model: Any
    vocab: text.Vocab
    variant: str  # "mask", "edit-v1" or "edit-v2"

    def __call__(self, x_t: torch.Tensor, t: int) -> discrete.Factorized:
        return discrete.Factorized(char_logits(self.model, x_t, self.vocab, self.variant, t))


def bert(vocab: text.Vocab, process: str, small: bool = False):
    from transformers import BertConfig, BertForMaskedLM

    size = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    if not small:
        size = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512)
    cfg = BertConfig(
        vocab_size=n_special(vocab.length) + vocab.V,
        max_position_embeddings=vocab.length + (process == "edit"),
        type_vocab_size=1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        **size,
    )
    return BertForMaskedLM(cfg)


def load(folder: Path, device: torch.device | str = "cpu") -> tuple[Any, dict[str, Any]]:
    """(model in eval mode, udm.json) of a saved text checkpoint; safetensors only, never the network."""
    from transformers import BertForMaskedLM
    from transformers.utils import logging

    logging.disable_progress_bar()
    meta_file = folder / "udm.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"no text checkpoint at {folder}; build it with `python -m udm train --process ...`")
    model = BertForMaskedLM.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    return model.to(device).eval(), json.loads(meta_file.read_text())


# ---------------------------------------------------------------- training
@dataclass(frozen=True)
class TextTrainConfig:
    process: str = "mask"
    data: str = "en5"
    steps: int = 8000
    batch_size: int = 256
    lr: float = 1e-3
    warmup: int = 200
    ema_decay: float = 0.999
    seed: int = 0
    small: bool = False

    def __post_init__(self) -> None:
        if self.process not in PROCESSES:
            raise ValueError(f"unknown text process {self.process!r}; valid: {', '.join(PROCESSES)}")
        text.check_name(self.data)
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be ≥ 1")


def loss(model, x0: torch.Tensor, vocab: text.Vocab, process: str) -> torch.Tensor:
    """Cross-entropy −log q(x_0 | x_t), t ~ U{1..l}. Mask: on the hidden positions. Edit: every position,
    half the batch corrupted by v2 (different tokens), half by v1 (any token)."""
    b, n = x0.shape
    t = torch.randint(1, n + 1, (b,), device=x0.device)
    gen = torch.Generator(device=x0.device).manual_seed(int(torch.randint(2**62, (1,))))
    if process == "mask":
        x_t = discrete.MaskForward(n, vocab.V).draw(x0, t, gen)
        logits = char_logits(model, x_t, vocab, "mask")
        hidden = x_t == vocab.MASK
        return nnf.cross_entropy(logits[hidden], x0[hidden])
    half = b // 2
    v2 = discrete.EditForward(n, vocab.V, distinct=True).draw(x0[:half], t[:half], gen)
    v1 = discrete.EditForward(n, vocab.V, distinct=False).draw(x0[half:], t[half:], gen)
    logits = torch.cat(
        [
            char_logits(model, v2, vocab, "edit-v2", t[:half]),
            char_logits(model, v1, vocab, "edit-v1", t[half:]),
        ]
    )
    return nnf.cross_entropy(logits.reshape(-1, vocab.V), x0.reshape(-1))


def train(cfg: TextTrainConfig, out: Path, *, progress: bool = True) -> dict[str, Any]:
    """Train; save the model (save_pretrained, safetensors), udm.json and a model card to `out`."""
    from .train import fit

    torch.manual_seed(cfg.seed)
    vocab = text.vocab(cfg.data)
    x0 = text.tokens(cfg.data, "train")
    start = time.time()
    model, summary, acc = fit(
        bert(vocab, cfg.process, cfg.small),
        lambda m, batch: loss(m, batch, vocab, cfg.process),
        x0,
        cfg,
        f"train {cfg.process} {cfg.data}",
        progress,
    )
    if acc.is_main_process:
        from transformers.utils import logging

        logging.disable_progress_bar()
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out, safe_serialization=True)
        held = held_out_accuracy(model, vocab, cfg.process)
        meta = {
            "process": cfg.process,
            "data": cfg.data,
            "length": vocab.length,
            "chars": vocab.chars,
            "train": {**asdict(cfg), **summary, "seconds_total": round(time.time() - start, 1)},
            "held_out": held,
        }
        (out / "udm.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        write_card(out)
    return summary


@torch.no_grad()
def held_out_accuracy(model, vocab: text.Vocab, process: str, seed: int = 0) -> dict[str, float]:
    """Per-character accuracy of x̂_0's argmax on the corrupted positions of held-out words, per t (edit:
    the argmax over tokens other than x_t's, i.e. given where the edits are)."""
    x0 = text.tokens(vocab.name, "test")
    device = next(model.parameters()).device
    x0 = x0.to(device)
    g = torch.Generator(device=device).manual_seed(seed)
    out = {}
    for t in range(1, vocab.length + 1):
        variants = ["mask"] if process == "mask" else ["edit-v2", "edit-v1"]
        for variant in variants:
            if variant == "mask":
                x_t = discrete.MaskForward(vocab.length, vocab.V).draw(x0, t, g)
            else:
                x_t = discrete.EditForward(vocab.length, vocab.V, variant == "edit-v2").draw(x0, t, g)
            logits = char_logits(model, x_t, vocab, variant, t)
            if variant != "mask":  # the best *other* token: the edit is located, as a mask shows it
                logits = logits.scatter(2, x_t.unsqueeze(2), float("-inf"))
            pred = logits.argmax(-1)
            corrupted = x_t != x0
            out[f"{variant} t={t}"] = round((pred[corrupted] == x0[corrupted]).float().mean().item(), 4)
    return out


def refresh_held_out(folder: Path) -> dict[str, float]:
    """Re-measure a checkpoint's held-out accuracy into udm.json and its card."""
    model, meta = load(folder)
    meta["held_out"] = held_out_accuracy(model, text.vocab(meta["data"]), meta["process"])
    (folder / "udm.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    write_card(folder)
    return meta["held_out"]


def write_card(folder: Path) -> None:
    meta = json.loads((folder / "udm.json").read_text())
    tr = meta["train"]
    what = {
        "mask": "the mask model: x_t hides t random positions behind [MASK]; cross-entropy on the hidden ones",
        "edit": "the edit model: x_t replaces t random positions, with a different token (v2) or any token "
        "(v1); a time token tells the network t and the variant; cross-entropy on every position",
    }[meta["process"]]
    lines = [
        f"# {folder.name}",
        "",
        f"`transformers.BertForMaskedLM` built from scratch for `{meta['data']}` "
        f"({len(meta['chars'])} characters, words of length {meta['length']}): {what}.",
        "",
        "## Training",
        "",
        f"- data: the training split of `{meta['data']}` (see `udm/text.py`)",
        f"- steps: {tr['steps']} × batch {tr['batch_size']}, AdamW lr {tr['lr']} (warm-up {tr['warmup']}, "
        f"cosine decay), EMA {tr['ema_decay']}; {tr['parameters']:,} parameters",
        f"- time: {tr['seconds']} s on `{tr['device']}`; final loss (smoothed): {tr['final_loss_ema']}",
        f"- rebuild: `python -m udm train --process {meta['process']} --data {meta['data']} "
        f"--out checkpoints/{folder.name}`",
        "",
        "## Held-out accuracy of x̂_0 (argmax) on the corrupted positions"
        + (" (edit: best token other than x_t's)" if meta["process"] == "edit" else ""),
        "",
        "| t | " + " | ".join(sorted({k.split(" ")[0] for k in meta["held_out"]})) + " |",
    ]
    variants = sorted({k.split(" ")[0] for k in meta["held_out"]})
    lines.append("|" + " --- |" * (len(variants) + 1))
    for t in range(1, meta["length"] + 1):
        lines.append(f"| {t} | " + " | ".join(f"{meta['held_out'][f'{v} t={t}']:.3f}" for v in variants) + " |")
    quality = folder / "quality.json"
    if quality.is_file():
        q = json.loads(quality.read_text())
        lines += ["", "## Samples", "", q["note"], "", "| " + " | ".join(q["columns"]) + " |"]
        lines.append("|" + " --- |" * len(q["columns"]))
        lines += ["| " + " | ".join(map(str, r)) + " |" for r in q["rows"]]
        lines += ["", f"Measured by `{q['command']}`."]
    (folder / "README.md").write_text("\n".join(lines) + "\n")


def default_config(process: str, data: str, **overrides: Any) -> TextTrainConfig:
    return replace(TextTrainConfig(process=process, data=data), **overrides)
