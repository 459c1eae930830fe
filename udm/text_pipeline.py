"""The mask and edit processes, ready to run: validated requests over the shipped BERTs or the exact
posterior of the training list (models load once and stay cached), and their registry entries."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch

from . import core, discrete, reference, text, textmodel
from .device import make_generator
from .pipeline import MAX_SAMPLES, Models, checkpoint_root, device_name
from .process import Choice, Process, check_choice, check_range, check_seed, config_with, register

MAX_TEXT_SAMPLES = MAX_SAMPLES["words"]  # per request
REFERENCE_MAX_STEPS = 100  # the text schedulers on words of four or five characters
# bert-only: the edit BERT at every step; "trained" takes the edit model's last step with the mask BERT
MODELS: tuple[str, ...] = ("trained", "exact", "bert-only")
MAX_TEMPERATURE = 5.0


def models(process: str) -> tuple[str, ...]:
    """The posteriors a text process offers: bert-only is the edit model's alone."""
    return MODELS if process == "edit" else MODELS[:2]


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
        check_choice(self.process, "text process", textmodel.PROCESSES)
        text.check_name(self.data)
        check_choice(self.sampler, f"sampler for {self.process}", rules(self.process))
        check_choice(self.model, f"model for {self.process}", models(self.process))
        check_range(self.n, "number of samples", 1, MAX_TEXT_SAMPLES)
        check_seed(self.seed)
        check_range(self.k, "k (positions per step)", 1, text.vocab(self.data).length)
        if self.k != 1 and self.process != "mask":
            raise ValueError("k applies to the mask model only; the edit model changes one token per step")
        check_range(self.temperature, "temperature", 0.05, MAX_TEMPERATURE)
        if self.pattern is not None:
            if self.process != "mask":
                raise ValueError("patterns are filled by the mask model only")
            start = pattern_tokens(self.data, self.pattern)
            if not (start == text.vocab(self.data).MASK).any():
                raise ValueError(f"pattern {self.pattern!r} has no blank ('?' or '_') to fill")


def rules(process: str) -> tuple[str, ...]:
    """The reverse rules of a text process: the post's two, then the reveal rules from elsewhere."""
    return discrete.MASK_RULES if process == "mask" else discrete.EDIT_RULES


def pattern_tokens(name: str, pattern: str) -> torch.Tensor:
    """(l,) tokens of a pattern like 'c?a?e' (blanks '?' or '_'); a clear ValueError otherwise."""
    v = text.vocab(name)
    if len(pattern) != v.length:
        raise ValueError(
            f"pattern {pattern!r} has {len(pattern)} characters; {name} words have exactly {v.length} "
            "(use '?' for a blank)"
        )
    return v.encode([pattern])[0]


_models = Models(lambda process, name, device: textmodel.load(checkpoint_root() / f"{process}-{name}", device))


def text_model(process: str, name: str, device: str | None = None):
    """(network, udm.json) of a shipped text checkpoint, loaded once per device."""
    return _models(process, name, device=device)


@cache
def exact(process: str, name: str, variant: str) -> discrete.ExactPosterior:
    """The true posterior when x_0 is uniform over the training split."""
    words = text.tokens(name, "train")
    prior = torch.full((len(words),), 1.0 / len(words))
    return discrete.ExactPosterior(words, prior, variant, mask=text.vocab(name).MASK)


def variant(req: TextRequest) -> str:
    return textmodel.variant_of(req.process, req.sampler)


def posterior(req: TextRequest, device: str | None = None) -> discrete.Posterior:
    if req.model == "exact":
        return exact(req.process, req.data, variant(req))
    model, meta = text_model(req.process, req.data, device)
    vocab = text.vocab(req.data)
    if meta["chars"] != vocab.chars:
        raise ValueError(f"the {req.process}-{req.data} checkpoint was trained on another character set")
    last = last_step(req.process, req.data, device) if req.model == "trained" else None
    return textmodel.NeuralPosterior(model, vocab, variant(req), last_step=last)


def last_step(process: str, name: str, device: str | None = None):
    """The mask model the edit model asks at t = 1 (textmodel.NeuralPosterior), where one is shipped for
    the same words; None otherwise (the edit BERT then takes that step too)."""
    if process != "edit" or not (checkpoint_root() / f"mask-{name}" / "udm.json").is_file():
        return None
    model, meta = text_model("mask", name, device)
    return model if meta["chars"] == text.vocab(name).chars else None


def start(req: TextRequest, device: str | None = None) -> tuple[int, torch.Tensor, torch.Tensor | None]:
    """(t, x_t, free positions or None) where a run begins."""
    dev = torch.device(device_name(device))
    v = text.vocab(req.data)
    if req.process == "edit":
        g = make_generator(req.seed, dev)
        return v.length, torch.randint(0, v.V, (req.n, v.length), generator=g, device=dev), None
    if req.pattern is None:
        return v.length, torch.full((req.n, v.length), v.MASK, device=dev), None
    x = pattern_tokens(req.data, req.pattern).to(dev).expand(req.n, -1).clone()
    free = x == v.MASK
    return int(free[0].sum()), x, free


def text_plan(req: TextRequest, device: str | None = None) -> core.Plan:
    dev = torch.device(device_name(device))
    post = posterior(req, device)
    t, x, free = start(req, device)
    v = text.vocab(req.data)
    if req.process == "mask":
        reverse = discrete.MaskReverse(req.sampler, v.MASK, req.temperature, free)
    else:
        reverse = discrete.EditReverse(req.sampler, v.V, req.temperature)
    return discrete.plan(post, reverse, x, t, make_generator(req.seed + 1, dev), k=req.k)


class TextProcess(Process):
    """The mask or the edit process on a word list (`TextRequest` with its `process` set)."""

    Request = TextRequest
    default_data = "en5"

    def __init__(self, name: str, title: str, tab: str):
        self.name, self.title = name, title
        self.tab = (tab, f"udm.app.text:build_{name}")

    def request(self, **fields) -> TextRequest:
        return super().request(process=self.name, **fields)

    def datasets(self) -> tuple[str, ...]:
        return text.TEXTS

    def kind(self, data_name: str) -> str:
        return "words"

    def choices(self, data_name: str) -> tuple[Choice, ...]:
        refs = (reference.MASK,) if self.name == "mask" else reference.EDIT
        return tuple(Choice(s) for s in rules(self.name)) + tuple(
            Choice(s, steps=True, reference=True, max_steps=REFERENCE_MAX_STEPS) for s in refs
        )

    def plan(self, req: TextRequest, device: str | None = None) -> core.Plan:
        return text_plan(req, device)

    def reference_steps(self, choice, data_name, n, seed, steps, eta, device):
        vocab = text.vocab(data_name)
        model, _ = text_model(self.name, data_name, device)
        g = make_generator(seed + 1, device)

        def logits(x: torch.Tensor, variant: str, t: int = 0) -> torch.Tensor:  # as udm's rules evaluate it
            with textmodel.sampling_precision(x.device):
                return textmodel.char_logits(model, x, vocab, variant, t).float()

        if choice.sampler == reference.MASK:
            x = torch.full((n, vocab.length), vocab.MASK, device=device)
            return reference.amused_steps(lambda x: logits(x, "mask"), x, vocab.MASK, steps, g)
        _, x, _ = start(TextRequest(process="edit", data=data_name, n=n, seed=seed), device)
        return reference.discrete_ddim_steps(
            lambda x, t: logits(x, "edit-v1", t),
            x,
            steps,
            choice.sampler.endswith("+loo"),
            g,
        )

    def evaluations(self, choice, data_name, steps):
        """A network call per step; the leave-one-out corrector adds one per step but the last."""
        k = self.total_steps(choice, data_name, steps)
        return 2 * k - 1 if choice.sampler.endswith("+loo") else k

    def total_steps(self, choice, data_name, steps):
        """udm's rules undo one corruption per step (l steps); the schedulers take their K."""
        return super().total_steps(choice, data_name, steps) if choice.reference else text.vocab(data_name).length

    def decode(self, data_name: str, x: torch.Tensor) -> list[str]:
        return text.vocab(data_name).decode(x.cpu())

    def train_config(self, data_name: str, small: bool = False, **overrides):
        return config_with(textmodel.default_config(self.name, data_name, small=small), self.name, **overrides)

    def train(self, cfg, out, progress: bool = True):
        return textmodel.train(cfg, out, progress=progress)

    def forget(self) -> None:
        _models.forget()


register(TextProcess("edit", "the edit model: random token replacement in fixed-length words", "Edit"))
register(TextProcess("mask", "the mask model: [MASK] corruption of fixed-length words, a BERT posterior", "Mask"))
