"""The text posteriors: `transformers.BertForMaskedLM` built from a small `BertConfig` (no download),
trained from scratch on a word list, saved with `save_pretrained` (safetensors) and reloaded offline.

Input ids: 0 = [MASK]; 1..l+1 = [E0..El], the edit-v2 time tokens; l+2..2l+2 = [A0..Al], the edit-v1
time tokens; then the characters. The mask model reads x_t alone (the masks show t); the edit model
reads [time token] + x_t, so it knows t and which forward process (v1 any-token, v2 different-token)
made x_t. Only the character logits are used.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as nnf

from . import core, discrete, judge, nets, text

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


def _multiplies_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AMX or AVX-512 BF16); elsewhere bfloat16 is emulated and slow."""
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


# Sampling runs the BERTs in bfloat16 where the CPU multiplies it natively: about twice as quick, and the
# valid-word rates do not move beyond their sampling noise (docs/figures.md). Set False for float32 throughout.
BFLOAT16_ON_CPU = _multiplies_bfloat16()


@contextmanager
def sampling_precision(device: torch.device):
    """Autocast to bfloat16 for a network evaluation on a CPU that multiplies it natively; else nothing."""
    if device.type == "cpu" and BFLOAT16_ON_CPU:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield


def char_logits(model, x_t: torch.Tensor, vocab: text.Vocab, variant: str, t: torch.Tensor | int = 0) -> torch.Tensor:
    """(B, l, V) logits over the characters at each position: the whole network's answer (training, and the
    reference schedulers; the samplers ask `NeuralPosterior`)."""
    logits = model(input_ids=input_ids(x_t, vocab, variant, t)).logits
    if variant != "mask":
        logits = logits[:, 1:]
    return logits[..., n_special(vocab.length) :]


def mask_prediction(model, x_t: torch.Tensor, vocab: text.Vocab) -> discrete.HiddenFactorized:
    """The mask model's q(x_0 | x_t), computed where it can differ: the network runs once per distinct row
    of x_t (every row of an all-[MASK] start is the same) and its head only at the hidden positions; a
    visible position is its own token, the true q(x_0^i | x_t) = δ(x_t^i) (the head is never trained there)."""
    rows, inverse = torch.unique(x_t, dim=0, return_inverse=True)
    hidden = rows == vocab.MASK
    states = model.bert(input_ids=input_ids(rows, vocab, "mask")).last_hidden_state
    logits = model.cls(states[hidden])[:, n_special(vocab.length) :]
    index = torch.full(rows.shape, -1, dtype=torch.long, device=x_t.device)
    index[hidden] = torch.arange(len(logits), device=x_t.device)
    return discrete.HiddenFactorized(x_t, logits, index[inverse])


@dataclass(frozen=True)
class NeuralPosterior:
    """q(x_0 | x_t) from the network: independent categoricals per position. The edit model's last step
    (t = 1), given a mask model of the same words (`last_step`), is that model's by Bayes' rule
    (`discrete.OneEdit`): one letter is wrong, and a mask model, told where its blank is, knows which
    letters fit there; the edit BERT has to find the wrong letter among l itself."""

    model: Any
    vocab: text.Vocab
    variant: str  # "mask", "edit-v1" or "edit-v2"
    last_step: Any = None  # edit: a mask model of the same words, asked at t = 1

    def __call__(self, x_t: torch.Tensor, t: int) -> discrete.Prediction:
        with sampling_precision(x_t.device):
            if self.variant == "mask":
                return mask_prediction(self.model, x_t, self.vocab)
            if t == 1 and self.last_step is not None:
                return one_edit(self.last_step, x_t, self.vocab)
            return discrete.Factorized(char_logits(self.model, x_t, self.vocab, self.variant, t))


def one_edit(mask_model, x_t: torch.Tensor, vocab: text.Vocab) -> discrete.OneEdit:
    """The edit posterior at t = 1 from a mask model: x_t with each position hidden in turn, one evaluation
    of the l copies (`mask_prediction`: one head per row, at its blank)."""
    b, n = x_t.shape
    blank = torch.eye(n, dtype=torch.bool, device=x_t.device)
    copies = torch.where(blank, vocab.MASK, x_t[:, None]).view(b * n, n)  # row (k, i): x_t with i hidden
    pred = mask_prediction(mask_model, copies, vocab)
    rows = pred.index.view(b, n, n)[:, blank]  # (b, n): the logits row of position i in copy i
    return discrete.OneEdit(x_t, pred.logits[rows])


def bert(vocab: text.Vocab, process: str, small: bool = False, width: int = 128, layers: int = 4, dropout: float = 0.0):
    """The network of a text posterior: ids of the special tokens and the characters in, l positions
    (and the edit model's time token)."""
    size = nets.bert_size(small, width, layers)
    return nets.bert_mlm(n_special(vocab.length) + vocab.V, vocab.length + (process == "edit"), dropout, **size)


class Tempered(torch.nn.Module):
    """The masked-LM head with its logits divided by a temperature: a checkpoint's calibration, applied
    wherever the network answers (every rule, the reference schedulers, the edit model's last step)."""

    def __init__(self, head: torch.nn.Module, temperature: float):
        super().__init__()
        self.head, self.temperature = head, temperature

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.head(states) / self.temperature

    @property
    def predictions(self):  # what transformers reaches for (get_output_embeddings: cls.predictions.decoder)
        return self.head.predictions


def calibrated(model, temperature: float):
    """`model` answering at `temperature` (its head wrapped once; 1 leaves it as it is)."""
    head = model.cls.head if isinstance(model.cls, Tempered) else model.cls
    model.cls = head if temperature == 1 else Tempered(head, temperature)
    return model


def load(folder: Path, device: torch.device | str = "cpu", calibrate: bool = True) -> tuple[Any, dict[str, Any]]:
    """(model in eval mode, udm.json) of a saved text checkpoint; safetensors only, never the network. A
    checkpoint with a "calibration" answers at its temperature unless `calibrate` is False (a calibrated
    model is for sampling: its state dict names the head `cls.head`, so save the uncalibrated one)."""
    from transformers import BertForMaskedLM
    from transformers.utils import logging

    logging.disable_progress_bar()
    meta_file = folder / "udm.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"no text checkpoint at {folder}; build it with `python -m udm train --process ...`")
    model = BertForMaskedLM.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    meta = json.loads(meta_file.read_text())
    if calibrate and "calibration" in meta:
        model = calibrated(model, float(meta["calibration"]["temperature"]))
    return model.to(device).eval(), meta


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
    width: int = 128  # BERT hidden size (heads of 32)
    layers: int = 4
    soft: float = 0.0  # weight of the exact posterior's marginals over the training list as a target
    dropout: float = 0.0  # the BERT's hidden and attention dropout while it trains
    eval_every: int = 0  # steps between points of the valid-rate curve (0: none)
    calibrate: int = 2000  # words sampled to calibrate the temperature after training (`calibrate`; 0: none)

    def __post_init__(self) -> None:
        if not 0.0 <= self.soft <= 1.0:
            raise ValueError(f"soft must be in [0, 1], got {self.soft}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.process not in PROCESSES:
            raise ValueError(f"unknown text process {self.process!r}; valid: {', '.join(PROCESSES)}")
        text.check_name(self.data)
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be ≥ 1")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be ≥ 0, got {self.eval_every}")
        if self.calibrate < 0:
            raise ValueError(f"calibrate must be ≥ 0 (words sampled; 0: none), got {self.calibrate}")


def loss(model, x0: torch.Tensor, vocab: text.Vocab, process: str, soft: float = 0.0, exact=None) -> torch.Tensor:
    """Cross-entropy −log q(x_0 | x_t), t ~ U{1..l}. Mask: on the hidden positions. Edit: every position,
    half the batch corrupted by v2 (different tokens), half by v1 (any token). With `soft` > 0 and the
    exact posteriors of the training list (`exact(variant)` → discrete.ExactPosterior), the target is
    (1 − soft) · the data + soft · the exact posterior's per-position marginals: a target of far less
    variance than one word, which the small network learns faster."""
    b, n = x0.shape
    t = torch.randint(1, n + 1, (b,), device=x0.device)
    gen = torch.Generator(device=x0.device).manual_seed(int(torch.randint(2**62, (1,))))
    if process == "mask":
        parts = [("mask", discrete.MaskForward(n, vocab.V).draw(x0, t, gen), t)]
        x_t = parts[0][1]
        where = x_t == vocab.MASK
    else:
        half = b // 2
        v2 = discrete.EditForward(n, vocab.V, distinct=True).draw(x0[:half], t[:half], gen)
        v1 = discrete.EditForward(n, vocab.V, distinct=False).draw(x0[half:], t[half:], gen)
        parts = [("edit-v2", v2, t[:half]), ("edit-v1", v1, t[half:])]
        where = torch.ones_like(x0, dtype=torch.bool)
    logits = torch.cat([char_logits(model, x, vocab, variant, tt) for variant, x, tt in parts])
    hard = nnf.cross_entropy(logits[where], x0[where])
    if soft == 0.0:
        return hard
    with torch.no_grad():
        target = torch.cat([_exact_marginals(exact(variant), x, tt, vocab.V) for variant, x, tt in parts])
    return (1 - soft) * hard - soft * (target[where] * nnf.log_softmax(logits[where].float(), -1)).sum(-1).mean()


def _exact_marginals(posterior: discrete.ExactPosterior, x_t: torch.Tensor, t: torch.Tensor, V: int) -> torch.Tensor:
    """(B, l, V) marginals of the exact q(x_0 | x_t) for per-example t (edit posteriors depend on t)."""
    out = torch.empty(*x_t.shape, V, device=x_t.device)
    for v in t.unique().tolist():
        i = t == v
        out[i] = posterior(x_t[i], int(v)).marginals(V)
    return out


def train(cfg: TextTrainConfig, out: Path, *, progress: bool = True) -> dict[str, Any]:
    """Train; save the model (save_pretrained, safetensors), udm.json and a model card to `out`."""
    from .train import fit

    torch.manual_seed(cfg.seed)
    vocab = text.vocab(cfg.data)
    x0 = text.tokens(cfg.data, "train")
    start = time.time()
    exact = None
    if cfg.soft > 0:
        prior = torch.full((len(x0),), 1.0 / len(x0))
        posteriors = {v: discrete.ExactPosterior(x0, prior, v, mask=vocab.MASK) for v in ("mask", "edit-v1", "edit-v2")}
        exact = posteriors.__getitem__
    curve: list[dict[str, Any]] = []

    def point(model, step: int, seconds: float) -> None:
        scores = judge.word_scores(cfg.data, sample_words(model, vocab, cfg.process, CURVE_SAMPLES))
        if cfg.process == "mask":
            scores |= exact_scores(model, vocab, cfg.data)
        curve.append({"steps": step, "seconds": round(seconds, 1), **{k: round(v, 4) for k, v in scores.items()}})
        if progress:
            exact = f", novel-valid (exact) {scores['novel_valid_exact']:.4f}" if "novel_valid_exact" in scores else ""
            print(f"  step {step}, {seconds:.0f} s: {CURVE_RULE} valid {scores['valid']:.3f}{exact}", flush=True)

    model, summary, acc = fit(
        bert(vocab, cfg.process, cfg.small, cfg.width, cfg.layers, cfg.dropout),
        lambda m, batch: loss(m, batch, vocab, cfg.process, cfg.soft, exact),
        x0,
        cfg,
        f"train {cfg.process} {cfg.data}",
        progress,
        every=cfg.eval_every,
        on_eval=point,
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
        if curve:
            meta["curve"] = {"rule": CURVE_RULE, "samples": CURVE_SAMPLES, "points": curve}
        if cfg.calibrate:
            meta["calibration"] = calibrate(model, vocab, cfg.process, cfg.calibrate, out)
            if progress:
                print(f"  calibrated: temperature {meta['calibration']['temperature']}")
        (out / "udm.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        write_card(out)
    return summary


CURVE_RULE, CURVE_SAMPLES = "improved", 1000  # the valid-rate curve recorded during training
EXACT_HEAD = " novel-valid, exact | bits, held-out | bits, training |"  # the mask model's curve (exact_scores)


def calibrate(model, vocab: text.Vocab, process: str, n: int = 2000, folder: Path | None = None) -> dict[str, Any]:
    """A text network's calibration (`calibration` for mask models, `edit_calibration` for edit models,
    against the mask model beside `folder`, else under the checkpoint root)."""
    if process == "mask":
        return calibration(model, vocab, n)
    return edit_calibration(model, vocab, n, mask_model_for(vocab, folder, next(model.parameters()).device))


def recalibrate(folder: Path, n: int = 2000) -> dict[str, Any]:
    """Calibrate a saved checkpoint again (an edit model after its mask model changed): udm.json and card."""
    model, meta = load(folder, calibrate=False)
    meta["calibration"] = calibrate(model, text.vocab(meta["data"]), meta["process"], n, folder)
    meta["train"]["calibrate"] = n
    (folder / "udm.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    write_card(folder)
    return meta["calibration"]


def mask_model_for(vocab: text.Vocab, folder: Path | None = None, device: torch.device | str = "cpu"):
    """The mask model of the same words (calibrated) that an edit checkpoint in `folder` is sampled with:
    `mask-NAME` beside it, else under the checkpoint root, as the samplers find it; None when there is none."""
    from .pipeline import checkpoint_root

    name = f"mask-{vocab.name}"
    for candidate in ([folder.parent / name] if folder is not None else []) + [checkpoint_root() / name]:
        if (candidate / "udm.json").is_file():
            model, meta = load(candidate, device)
            return model if meta["chars"] == vocab.chars else None
    return None


@contextmanager
def _head_kept(model):
    """Measure `model` at other temperatures and give it back as it came (a cached model keeps its own)."""
    head = model.cls
    try:
        yield
    finally:
        model.cls = head


def calibration(model, vocab: text.Vocab, n: int = 2000) -> dict[str, Any]:
    """The mask model's temperature τ at which the improved rule's words are as varied as the data: their
    entropy (n of them, scored exactly by `udm.likelihood`) equals log₂ of the training list's size."""
    from . import likelihood

    device = next(model.parameters()).device
    target = math.log2(len(text.tokens(vocab.name, "train")))
    start = time.time()
    with _head_kept(model):
        post = NeuralPosterior(calibrated(model, 1.0), vocab, "mask")
        at_1, _ = likelihood.entropy(post, vocab.MASK, vocab.V, vocab.length, n, device=device)
        tau, bits = likelihood.calibrate(post, vocab.MASK, vocab.V, vocab.length, target, n, device=device)
    return {
        "temperature": tau,
        "method": "entropy",
        "bits": round(bits, 3),
        "target_bits": round(target, 3),
        "bits_at_1": round(at_1, 3),
        "samples": n,
        "seconds": round(time.time() - start, 1),
    }


def collision_rate(words: torch.Tensor) -> float:
    """The share of pairs of rows (words) that are equal: an unbiased estimate of Σ_w p(w)², the chance
    that two words drawn coincide (2 to the minus Rényi entropy of order 2)."""
    _, counts = torch.unique(words, dim=0, return_counts=True)
    n = len(words)
    return float((counts * (counts - 1)).sum()) / max(1, n * (n - 1))


def edit_calibration(model, vocab: text.Vocab, n: int = 2000, mask_model=None) -> dict[str, Any]:
    """The edit model's temperature τ at which its improved rule's words (the last step by `mask_model`,
    as the samplers take it) coincide as often as the mask model's do at its calibrated temperature: the two
    processes then make words of equal variety. Its words' probabilities cannot be computed, so variety is
    measured by collisions among n of them; without a mask model, against the training list's 1 / N."""
    from . import likelihood

    start = time.time()
    if mask_model is not None:
        words = _final_tokens(NeuralPosterior(mask_model, vocab, "mask"), vocab, "mask", n, "improved", 0)
        reference = collision_rate(words)
    else:
        reference = 1 / len(text.tokens(vocab.name, "train"))

    def rate(tau: float) -> float:
        post = NeuralPosterior(calibrated(model, tau), vocab, "edit-v2", last_step=mask_model)
        return collision_rate(_final_tokens(post, vocab, "edit", n, "improved", 1))

    with _head_kept(model):  # Rényi's entropy of order 2, −log₂ of the collision rate, grows with τ
        tau = likelihood.bisect_temperature(
            lambda tau: -math.log2(max(rate(tau), 1e-12)), -math.log2(max(reference, 1e-12))
        )
        found, at_1 = rate(tau), rate(1.0)
    return {
        "temperature": tau,
        "method": "collisions",
        "collisions": round(found, 7),
        "reference_collisions": round(reference, 7),
        "reference": f"mask-{vocab.name}" if mask_model is not None else "the training list",
        "collisions_at_1": round(at_1, 7),
        "samples": n,
        "seconds": round(time.time() - start, 1),
    }


def variant_of(process: str, rule: str) -> str:
    """The corruption a rule's posterior is asked about: mask, or the edit model's v1 (naive) / v2 (the others)."""
    if process == "mask":
        return "mask"
    return "edit-v1" if rule == "naive" else "edit-v2"


@torch.no_grad()
def sample_words(model, vocab: text.Vocab, process: str, n: int, rule: str = CURVE_RULE, seed: int = 0) -> list[str]:
    """n words from the network by one of the post's rules, from all-[MASK] (mask) or random tokens (edit)."""
    posterior = NeuralPosterior(model, vocab, variant_of(process, rule))
    return vocab.decode(_final_tokens(posterior, vocab, process, n, rule, seed).cpu())


@torch.no_grad()
def _final_tokens(posterior: NeuralPosterior, vocab: text.Vocab, process: str, n: int, rule: str, seed: int):
    """(n, l) the x_0 a rule ends at, from all-[MASK] (mask) or random tokens (edit), on the network's device."""
    device = next(posterior.model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    if process == "mask":
        x = torch.full((n, vocab.length), vocab.MASK, device=device)
        reverse = discrete.MaskReverse(rule, vocab.MASK)
    else:
        x = torch.randint(0, vocab.V, (n, vocab.length), generator=g, device=device)
        reverse = discrete.EditReverse(rule, vocab.V)
    return core.last(discrete.plan(posterior, reverse, x, vocab.length, g).steps()).x_s


def exact_scores(model, vocab: text.Vocab, name: str, n_train: int = 2000) -> dict[str, float]:
    """The mask model's improved rule measured without sampling (`udm.likelihood`): the probability it
    makes a held-out word (novel-valid, exact) and its bits per word on the held-out words and on n_train
    training words (a fixed draw)."""
    from . import likelihood

    seen, held = likelihood.on_splits(NeuralPosterior(model, vocab, "mask"), name, n_train)
    return {
        "novel_valid_exact": float(held.sum()),
        "bits_held_out": likelihood.log2_mean(held),
        "bits_training": likelihood.log2_mean(seen),
    }


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


def write_card(folder: Path) -> None:
    meta = json.loads((folder / "udm.json").read_text())
    tr = meta["train"]
    what = {
        "mask": "the mask model: x_t hides t random positions behind [MASK]; cross-entropy on the hidden ones",
        "edit": "the edit model: x_t replaces t random positions, with a different token (v2) or any token "
        "(v1); a time token tells the network t and the variant; cross-entropy on every position. Its last "
        f"step (t = 1) the samplers take with `mask-{meta['data']}` where it is shipped, by Bayes' rule: "
        "q(x_0 = x_t[i ← c] | x_t) ∝ m_i(c) / m_i(x_t,i), m_i the mask model's guess at position i hidden "
        "(`udm.discrete.OneEdit`)",
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
        f"- rebuild: `python -m udm train --process {meta['process']} --data {meta['data']}{_options(tr)} "
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
    if "curve" in meta:
        c = meta["curve"]
        exact_curve = all("novel_valid_exact" in p for p in c["points"])
        lines += [
            "",
            f"## Valid rate against training time ({c['rule']} rule, {c['samples']} samples, EMA weights, "
            "temperature 1)",
            "",
        ]
        if exact_curve:
            lines += [
                "novel-valid, exact: the probability that the rule makes a held-out word (`udm.likelihood`, no "
                "sampling); bits per word on the held-out words and on 2,000 training words.",
                "",
            ]
        lines += [
            "| steps | training s | valid | novel-valid | distinct |" + (EXACT_HEAD if exact_curve else ""),
            "| --- | --- | --- | --- | --- |" + (" --- |" * 3 if exact_curve else ""),
        ]
        lines += [
            f"| {p['steps']} | {p['seconds']:.0f} | {p['valid']:.3f} | {p['novel_valid']:.3f} | {p['distinct']:.3f} |"
            + (
                f" {p['novel_valid_exact']:.4f} | {p['bits_held_out']:.2f} | {p['bits_training']:.2f} |"
                if exact_curve
                else ""
            )
            for p in c["points"]
        ]
    if "calibration" in meta:
        lines += ["", "## Calibration", "", _calibration_text(meta["calibration"])]
    exact = folder / "likelihood.json"
    if exact.is_file():
        e = json.loads(exact.read_text())
        lines += [
            "",
            "## The improved rule, exactly",
            "",
            "The probability that the improved rule (one position per step) makes each word of the list, summed "
            "(`udm.likelihood`: every reveal order, no sampling): valid "
            f"{e['valid']:.4f} (training list {e['training list']:.4f}, novel-valid {e['novel-valid']:.4f}); "
            f"off-list valid {e['off-list valid']:.4f}. Bits per word: {e['bits, training']:.2f} on the training "
            f"words, {e['bits, held-out']:.2f} on the held-out words (a list drawn at random: "
            f"{e['bits, a list at random']:.2f}; a word whose probability rounds to 0 counts 64 bits)"
            + (f", at the calibrated temperature {e['temperature']:g}" if e.get("temperature", 1) != 1 else "")
            + ".",
        ]
        if "at temperature 1" in e:
            r = e["at temperature 1"]
            lines[-1] += (
                f" The network as trained (temperature 1): valid {r['valid']:.4f} (training list "
                f"{r['training list']:.4f}, novel-valid {r['novel-valid']:.4f}); {r['bits, training']:.2f} / "
                f"{r['bits, held-out']:.2f} bits per training / held-out word."
            )
        lines[-1] += f" Measured by `{e['command']}`."
    quality = folder / "quality.json"
    if quality.is_file():
        q = json.loads(quality.read_text())
        lines += ["", "## Samples", "", q["note"], "", "| " + " | ".join(q["columns"]) + " |"]
        lines.append("|" + " --- |" * len(q["columns"]))
        lines += ["| " + " | ".join(map(str, r)) + " |" for r in q["rows"]]
        lines += ["", f"Measured by `{q['command']}`."]
    (folder / "README.md").write_text("\n".join(lines) + "\n")


def _calibration_text(c: dict[str, Any]) -> str:
    head = (
        f"The samplers divide the network's logits by τ = {c['temperature']:g} (the tabs' and the command line's "
        "temperature multiplies it: 1 samples the model as calibrated), set by bisection ("
        f"{c['seconds']:.0f} s; `python -m udm train` does it after training, `python -m udm calibrate` again). "
    )
    if c.get("method", "entropy") == "entropy":
        return head + (
            "τ is the temperature at which the improved rule's words are as varied as the data: their entropy, "
            f"{c['bits']:.2f} bits ({c['samples']} of them, each scored exactly by `udm.likelihood`), is log₂ of "
            f"the training list's size, {c['target_bits']:.2f} bits; at temperature 1 it is {c['bits_at_1']:.2f} "
            "(Braverman et al., 2020, *Calibration, entropy rates, and memory in language models*)."
        )
    return head + (
        "τ is the temperature at which the improved rule's words (the last step by the mask model, as the "
        f"samplers take it) coincide as often as those of {c['reference']}: a share {c['collisions']:.2e} of "
        f"the pairs among {c['samples']} of them are the same word, against {c['reference_collisions']:.2e} "
        f"(at temperature 1: {c['collisions_at_1']:.2e}). The edit model's word probabilities cannot be "
        "computed, so variety is measured by collisions (Rényi's entropy of order 2); matched to the mask "
        "model's, the two processes make words of equal variety."
    )


def _options(train: dict[str, Any]) -> str:
    """The command-line options that rebuild a checkpoint trained with other than the default settings."""
    default = asdict(default_config(train["process"], train["data"]))
    keys = ("steps", "batch_size", "lr", "seed", "width", "layers", "soft", "dropout", "eval_every", "calibrate")
    return "".join(f" --{k.replace('_', '-')} {train[k]}" for k in keys if k in train and train[k] != default[k])


def default_config(process: str, data: str, **overrides: Any) -> TextTrainConfig:
    return replace(TextTrainConfig(process=process, data=data), **overrides)
