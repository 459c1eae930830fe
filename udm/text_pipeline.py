"""Ready-made runs of the mask and edit models: validated requests over the shipped BERTs or the exact
posterior of the training list; models load once and stay cached."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import torch

from . import core, discrete, text, textmodel
from .device import LOADING, default_device, make_generator
from .pipeline import checkpoint_root

MAX_TEXT_SAMPLES = 2048  # per request
MODELS: tuple[str, ...] = ("trained", "exact")
MAX_TEMPERATURE = 5.0


@dataclass(frozen=True)
class TextRequest:
    """One run. Mask: `k` positions revealed per step; `pattern` (mask only) fixes some characters and
    leaves '?' / '_' blanks to fill. Edit: starts from random tokens."""

    process: str = "mask"
    data: str = "en5"
    sampler: str = "improved"
    model: str = "trained"
    n: int = 16
    seed: int = 0
    k: int = 1
    temperature: float = 1.0
    pattern: str | None = None

    def __post_init__(self) -> None:
        if self.process not in textmodel.PROCESSES:
            raise ValueError(f"unknown text process {self.process!r}; valid: {', '.join(textmodel.PROCESSES)}")
        text.check_name(self.data)
        if self.sampler not in discrete.SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; valid: {', '.join(discrete.SAMPLERS)}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; valid: {', '.join(MODELS)}")
        if not 1 <= self.n <= MAX_TEXT_SAMPLES:
            raise ValueError(f"number of samples must be between 1 and {MAX_TEXT_SAMPLES}, got {self.n}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a non-negative integer below 2^63, got {self.seed}")
        length = text.vocab(self.data).length
        if not 1 <= self.k <= length:
            raise ValueError(f"k (positions per step) must be between 1 and {length}, got {self.k}")
        if self.k != 1 and self.process != "mask":
            raise ValueError("k applies to the mask model only; the edit model changes one token per step")
        if not 0.05 <= self.temperature <= MAX_TEMPERATURE:
            raise ValueError(f"temperature must be between 0.05 and {MAX_TEMPERATURE}, got {self.temperature}")
        if self.pattern is not None:
            if self.process != "mask":
                raise ValueError("patterns are filled by the mask model only")
            start = pattern_tokens(self.data, self.pattern)
            if not (start == text.vocab(self.data).MASK).any():
                raise ValueError(f"pattern {self.pattern!r} has no blank ('?' or '_') to fill")


def pattern_tokens(name: str, pattern: str) -> torch.Tensor:
    """(l,) tokens of a pattern like 'c?a?e' (blanks '?' or '_'); a clear ValueError otherwise."""
    v = text.vocab(name)
    if len(pattern) != v.length:
        raise ValueError(
            f"pattern {pattern!r} has {len(pattern)} characters; {name} words have exactly {v.length} "
            "(use '?' for a blank)"
        )
    return v.encode([pattern])[0]


_LOADING = LOADING  # shared by every loader (udm.device)


def text_model(process: str, name: str, device: str | None = None):
    """(network, udm.json) of a shipped text checkpoint, loaded once per device."""
    with _LOADING:
        return _text_model(process, name, str(torch.device(device) if device else default_device()))


@cache
def _text_model(process: str, name: str, device: str):
    return textmodel.load(checkpoint_root() / f"{process}-{name}", device)


def forget_models() -> None:
    _text_model.cache_clear()


@cache
def exact(process: str, name: str, variant: str) -> discrete.ExactPosterior:
    """The true posterior when x_0 is uniform over the training split."""
    words = text.tokens(name, "train")
    prior = torch.full((len(words),), 1.0 / len(words))
    return discrete.ExactPosterior(words, prior, variant, mask=text.vocab(name).MASK)


def variant(req: TextRequest) -> str:
    if req.process == "mask":
        return "mask"
    return "edit-v2" if req.sampler == "improved" else "edit-v1"


def posterior(req: TextRequest, device: str | None = None) -> discrete.Posterior:
    if req.model == "exact":
        return exact(req.process, req.data, variant(req))
    model, meta = text_model(req.process, req.data, device)
    vocab = text.vocab(req.data)
    if meta["chars"] != vocab.chars:
        raise ValueError(f"the {req.process}-{req.data} checkpoint was trained on another character set")
    return textmodel.NeuralPosterior(model, vocab, variant(req))


def start(req: TextRequest, device: str | None = None) -> tuple[int, torch.Tensor, torch.Tensor | None]:
    """(t, x_t, free positions or None) where a run begins."""
    dev = torch.device(device) if device else default_device()
    v = text.vocab(req.data)
    if req.process == "edit":
        g = make_generator(req.seed, dev)
        return v.length, torch.randint(0, v.V, (req.n, v.length), generator=g, device=dev), None
    if req.pattern is None:
        return v.length, torch.full((req.n, v.length), v.MASK, device=dev), None
    x = pattern_tokens(req.data, req.pattern).to(dev).expand(req.n, -1).clone()
    free = x == v.MASK
    return int(free[0].sum()), x, free


def text_steps(req: TextRequest, device: str | None = None) -> Iterator[core.Step]:
    """The step records of one run (tokens (n, l) in x_t, x0_hat, x_s)."""
    return text_plan(req, device).steps()


def text_plan(req: TextRequest, device: str | None = None) -> core.Plan:
    dev = torch.device(device) if device else default_device()
    post = posterior(req, device)
    t, x, free = start(req, device)
    v = text.vocab(req.data)
    if req.process == "mask":
        reverse = discrete.MaskReverse(req.sampler, v.MASK, req.temperature, free)
    else:
        reverse = discrete.EditReverse(req.sampler, v.V, req.temperature)
    return discrete.plan(post, reverse, x, t, make_generator(req.seed + 1, dev), k=req.k)


def many_texts(req: TextRequest, n: int, device: str | None = None) -> list[str]:
    """n final strings, in request-sized batches with seeds seed, seed+1, …"""
    from dataclasses import replace

    out: list[str] = []
    v = text.vocab(req.data)
    for i, s in enumerate(range(0, n, MAX_TEXT_SAMPLES)):
        r = replace(req, n=min(MAX_TEXT_SAMPLES, n - s), seed=req.seed + i)
        out += v.decode(core.last(text_steps(r, device)).x_s.cpu())
    return out
