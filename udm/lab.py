"""The Lab: a forward process composed from blocks, and the reverse rules that follow from it (UDM.md §1).

A visitor's process is a `Spec`: data, blocks, T. Its forward is, for points and images,

    x_t = F_t(x_0, ε) = a_t · D_t(x_0) + b_t · ε,        t = 0..T, D_0 = identity, b_0 = 0

where D_t applies the deterministic blocks in order (blur, pixelate, fade, mask: cold diffusion's
degradations, `udm.cold`) and (a_t, b_t) = (ᾱ_t, β̄_t) with a `noise` block (hot diffusion's schedule,
`udm.schedule`), else (1, σ) for t ≥ 1. For words it is one token block: `mask` or `edit` (`udm.discrete`),
t counting the corrupted positions. What follows from F alone:

- naive:    x_s = F_s(x̂_0, ε'), fresh noise, for every F;
- improved: x_s = F_s(x̂_0, ε̂) with ε̂ = F_t⁻¹(x̂_0, x_t) = (x_t − a_t D_t(x̂_0)) / b_t; where b_t = 0 its
  limit x_s = a_s D_s(x̂_0) + (x_t − a_t D_t(x̂_0)) (cold diffusion's improved step);
- ddpm, ddim, analytic-ddpm: where F is Gaussian in x_0 (noise alone: x_t = ᾱ_t x_0 + β̄_t ε), `udm.hot`;
- for tokens, the discrete naive and improved rules of `udm.discrete`.

Shapes: points (B, 2), images (B, 1, H, W) in [-1, 1], words (B, l) long.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import cache, lru_cache
from typing import Any, Literal

import torch

from . import cold, core, data, discrete, text
from .device import randn
from .process import check_choice
from .schedule import SCHEDULES, Schedule, make

Kind = Literal["points", "images", "words"]
POINT_SETS: tuple[str, ...] = data.POINTS
LAB_DATA: tuple[str, ...] = (*POINT_SETS, "drawing", "digits8", "mnist14", "mnist28", "en5", "words")
IMAGE_SHAPES = {"digits8": (1, 8, 8), "mnist14": (1, 14, 14), "mnist28": (1, 28, 28)}


@dataclass(frozen=True)
class Block:
    name: str
    kinds: tuple[str, ...]  # the data it applies to
    what: str  # one plain line


BLOCKS: dict[str, Block] = {
    b.name: b
    for b in (
        Block("noise", ("points", "images"), "Gaussian noise: xₜ = ᾱₜ·x + β̄ₜ·ε (linear or cosine ᾱₜ)"),
        Block("blur", ("images",), "heat dissipation: a Gaussian blur that widens with t, to the mean grey"),
        Block("pixelate", ("images",), "fewer, larger pixels as t grows, down to one"),
        Block("fade", ("images",), "a straight fade to the image's mean grey"),
        Block("mask", ("images", "words"), "images: a grey disc grows from the centre; words: t letters hidden"),
        Block("edit", ("words",), "t letters replaced by different random letters"),
    )
}
TOKEN_BLOCKS = ("mask", "edit")
GAUSSIAN_RULES: tuple[str, ...] = ("ddpm", "ddim", "analytic-ddpm")
RULES_SOURCE = {  # where each rule comes from (the reveal rules for words: udm.discrete)
    **discrete.RULE_SOURCES,
    "naive": "the post: xₛ = Fₛ(x̂₀, fresh ε)",
    "improved": "the post: xₛ = Fₛ(x̂₀, ε̂), with ε̂ read back from xₜ",
    "ddpm": "Ho et al. 2020 (the post's general step, η = 1)",
    "ddim": "Song et al. 2021 (η = 0)",
    "analytic-ddpm": "Bao et al. 2022 (the optimal posterior variance)",
}

# Limits on what a visitor sends (checked before any work).
MAX_T = 1000
MIN_WORDS, MAX_WORDS = 20, 5000
MAX_WORD_LENGTH = 12
MAX_ALPHABET = 100
MIN_POINTS, MAX_POINTS = 20, 5000
MAX_COORD = 1e6


def kind_of(name: str) -> Kind:
    if name in (*POINT_SETS, "drawing"):
        return "points"
    return "images" if name in IMAGE_SHAPES else "words"


# ---------------------------------------------------------------- the spec: what a visitor composed
@dataclass(frozen=True)
class Spec:
    """A composed forward process on some data. `forward` lists the blocks in the order they act (noise
    last); T defaults to 1000 with noise, 50 without, and is the word length for words."""

    data: str
    forward: tuple[str, ...]
    T: int | None = None
    schedule: str = "linear"  # the noise block's ᾱ_t
    sigma: float = 0.0  # Gaussian noise σ on top of deterministic blocks (no noise block)
    words: tuple[str, ...] = ()  # data "words": the list (equal lengths)
    points: tuple[tuple[float, float], ...] = ()  # data "drawing": the points

    def __post_init__(self) -> None:
        check_choice(self.data, "data", LAB_DATA)
        object.__setattr__(self, "forward", tuple(self.forward))
        if not self.forward:
            raise ValueError(f"choose at least one block; valid: {', '.join(BLOCKS)}")
        for b in self.forward:
            check_choice(b, "block", tuple(BLOCKS))
            if self.kind not in BLOCKS[b].kinds:
                fits = ", ".join(n for n, x in BLOCKS.items() if self.kind in x.kinds)
                raise ValueError(
                    f"the {b} block does not apply to {self.kind} ({self.data}); blocks for {self.kind}: {fits}"
                )
        if len(set(self.forward)) != len(self.forward):
            raise ValueError(f"a block appears twice in {'+'.join(self.forward)}")
        if "noise" in self.forward and self.forward[-1] != "noise":
            raise ValueError(
                f"noise goes last (it is added on top of the other blocks): try {_noise_last(self.forward)}"
            )
        if self.kind == "words" and len(self.forward) != 1:
            raise ValueError("words take one block: mask or edit")
        check_choice(self.schedule, "schedule", SCHEDULES)
        if not (isinstance(self.sigma, (int, float)) and 0.0 <= self.sigma <= 1.0):
            raise ValueError(f"σ must be a number between 0 and 1, got {self.sigma!r}")
        if self.sigma > 0 and (self.gaussian or self.kind == "words"):
            raise ValueError("σ adds noise to deterministic blocks; with a noise block (or words) leave it at 0")
        if self.kind == "points" and self.sigma == 0 and not self.gaussian:
            raise ValueError("points need the noise block")
        self._check_T()
        self._check_data()

    @property
    def kind(self) -> Kind:
        return kind_of(self.data)

    @property
    def gaussian(self) -> bool:
        return "noise" in self.forward

    @property
    def degradations(self) -> tuple[str, ...]:
        """The deterministic blocks of a points or images process, in order."""
        return tuple(b for b in self.forward if b != "noise") if self.kind != "words" else ()

    @property
    def steps_T(self) -> int:
        """T, its default filled in."""
        if self.kind == "words":
            return self.length
        return self.T if self.T is not None else (1000 if self.gaussian else 50)

    @property
    def length(self) -> int:
        return len(self.words[0]) if self.data == "words" else 5

    @property
    def name(self) -> str:
        """e.g. "blur+noise on digits8"."""
        return f"{'+'.join(self.forward)} on {self.data}"

    def _check_T(self) -> None:
        if self.T is None:
            return
        if not isinstance(self.T, int) or isinstance(self.T, bool):
            raise ValueError(f"T must be a whole number, got {self.T!r}")
        if self.kind == "words":
            if self.T != self.length:
                raise ValueError(f"for words T is the word length ({self.length}), got {self.T}")
            return
        lo = 21 if self.gaussian and self.schedule == "linear" else 2  # the linear schedule needs T > 20
        if not lo <= self.T <= MAX_T:
            raise ValueError(f"T must be between {lo} and {MAX_T}, got {self.T}")

    def _check_data(self) -> None:
        if self.data != "words" and self.words:
            raise ValueError("a word list goes with data 'words'")
        if self.data != "drawing" and self.points:
            raise ValueError("drawn points go with data 'drawing'")
        if self.data == "words":
            word_list(self.words)
        if self.data == "drawing":
            check_points(self.points)

    # ---------------------------------------------------------------- as JSON
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["forward"] = list(self.forward)
        d["words"], d["points"] = list(self.words), [list(p) for p in self.points]
        return {k: v for k, v in d.items() if v not in ((), [], None) or k == "forward"}

    @classmethod
    def from_dict(cls, d: Any) -> Spec:
        """A spec from parsed JSON; anything malformed is a ValueError that says what is allowed."""
        if not isinstance(d, dict):
            raise ValueError('a spec is a JSON object such as {"data": "gaussians8", "forward": ["noise"]}')
        allowed = {"data", "forward", "T", "schedule", "sigma", "words", "points"}
        extra = sorted(set(d) - allowed)
        if extra:
            raise ValueError(f"unknown spec field {', '.join(map(repr, extra))}; fields: {', '.join(sorted(allowed))}")
        if "data" not in d or "forward" not in d:
            raise ValueError("a spec needs 'data' and 'forward'")
        fwd = d["forward"]
        if isinstance(fwd, str):
            fwd = fwd.split("+")
        if not isinstance(fwd, list) or not all(isinstance(b, str) for b in fwd):
            raise ValueError("'forward' is a list of block names (or one string joined by '+')")
        words = d.get("words", [])
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError("'words' is a list of strings")
        pts = d.get("points", [])
        if not isinstance(pts, list) or not all(isinstance(p, list) and len(p) == 2 for p in pts):
            raise ValueError("'points' is a list of [x, y] pairs")
        try:
            points = tuple((float(x), float(y)) for x, y in pts)
        except (TypeError, ValueError):
            raise ValueError("'points' must hold numbers") from None
        sigma = d.get("sigma", 0.0)
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)):
            raise ValueError(f"'sigma' must be a number between 0 and 1, got {sigma!r}")
        return cls(
            data=d["data"],
            forward=tuple(fwd),
            T=d.get("T"),
            schedule=d.get("schedule", "linear"),
            sigma=float(sigma),
            words=tuple(words),
            points=points,
        )

    @classmethod
    def from_json(cls, s: str) -> Spec:
        try:
            d = json.loads(s)
        except (json.JSONDecodeError, RecursionError) as e:
            raise ValueError(f"the spec is not valid JSON ({e.__class__.__name__})") from None
        return cls.from_dict(d)


def _noise_last(blocks) -> str:
    return "+".join([*(b for b in blocks if b != "noise"), "noise"])


def parse_words(pasted: str) -> tuple[str, ...]:
    """A pasted list (one word per line; blank lines and surrounding spaces ignored; repeats dropped)."""
    ws = [w.strip() for w in pasted.splitlines()]
    return tuple(dict.fromkeys(w for w in ws if w))


def word_list(ws: tuple[str, ...]) -> tuple[str, ...]:
    """Check a word list: MIN_WORDS … MAX_WORDS distinct words of one length ≤ MAX_WORD_LENGTH, with no
    spaces and no '?' or '_' (they mark blanks); the alphabet is whatever characters the list uses."""
    if not MIN_WORDS <= len(ws) <= MAX_WORDS:
        raise ValueError(f"a word list needs {MIN_WORDS} to {MAX_WORDS} words (one per line), got {len(ws)}")
    if len(set(ws)) != len(ws):
        raise ValueError("the word list repeats a word")
    lengths = sorted({len(w) for w in ws})
    if len(lengths) > 1:
        odd = next(w for w in ws if len(w) != len(ws[0]))
        raise ValueError(f"every word needs the same length: {ws[0]!r} has {len(ws[0])}, {odd!r} has {len(odd)}")
    if not 2 <= lengths[0] <= MAX_WORD_LENGTH:
        raise ValueError(f"words need 2 to {MAX_WORD_LENGTH} characters, got {lengths[0]}")
    for w in ws:
        bad = next((c for c in w if c.isspace() or c in "?_" or not c.isprintable()), None)
        if bad is not None:
            raise ValueError(f"{w!r} holds {bad!r}; words may not hold spaces, '?' or '_' (they mark blanks)")
    chars = set("".join(ws))
    if len(chars) > MAX_ALPHABET:
        raise ValueError(f"the list uses {len(chars)} different characters; at most {MAX_ALPHABET}")
    return ws


def check_points(points) -> None:
    if not MIN_POINTS <= len(points) <= MAX_POINTS:
        raise ValueError(f"a drawing needs {MIN_POINTS} to {MAX_POINTS} points of ink, got {len(points)}: draw more")
    if not all(math.isfinite(v) and abs(v) <= MAX_COORD for p in points for v in p):
        raise ValueError("drawn points must be finite numbers")


def points_from_ink(ink, max_points: int = 2000, seed: int = 0) -> tuple[tuple[float, float], ...]:
    """A drawing (an (H, W) array, ink > 0.5) as a point cloud: up to `max_points` ink pixels, centred
    and scaled so the cloud spans about [-2, 2] (its larger side), y pointing up."""
    import numpy as np

    ys, xs = np.nonzero(np.asarray(ink) > 0.5)
    if len(xs) < MIN_POINTS:
        raise ValueError("the drawing is empty: draw a shape with the brush (a few strokes are enough)")
    rng = np.random.default_rng(seed)
    if len(xs) > max_points:
        keep = rng.choice(len(xs), max_points, replace=False)
        xs, ys = xs[keep], ys[keep]
    p = np.stack([xs, -ys], 1).astype(np.float64)
    p -= (p.max(0) + p.min(0)) / 2
    p *= 2.0 / max(1.0, np.abs(p).max())
    return tuple((round(float(x), 4), round(float(y), 4)) for x, y in p)


# ---------------------------------------------------------------- the data in model space
@cache
def _vocab(spec_words: tuple[str, ...]) -> text.Vocab:
    return text.Vocab("your list", "".join(sorted(set("".join(spec_words)))), len(spec_words[0]))


def vocab(spec: Spec) -> text.Vocab:
    return text.vocab("en5") if spec.data == "en5" else _vocab(spec.words)


@lru_cache(maxsize=8)  # the strip redraws on every change of the blocks; the data stays the same
def training_data(spec: Spec, n_points: int = 20_000) -> torch.Tensor:
    """x_0 examples in model space: points (N, 2), images (N, 1, H, W) in [-1, 1], or tokens (N, l).
    (Cached: callers must not change it in place.)"""
    if spec.data in POINT_SETS:
        return data.points(spec.data, n_points, seed=0)
    if spec.data == "drawing":
        return torch.tensor(spec.points, dtype=torch.float32)
    if spec.data == "mnist14":
        return torch.nn.functional.avg_pool2d(data.training_set("mnist28"), 2)
    if spec.kind == "images":
        return data.training_set(spec.data)
    if spec.data == "en5":
        return text.tokens("en5", "train")
    return vocab(spec).encode(spec.words)


def example_shape(spec: Spec) -> tuple[int, ...]:
    if spec.kind == "points":
        return (2,)
    if spec.kind == "images":
        return IMAGE_SHAPES[spec.data]
    return (spec.length,)


# ---------------------------------------------------------------- 1. forward
@dataclass(frozen=True, eq=False)
class Composed:
    """x_t = a_t D_t(x_0) + b_t ε: deterministic blocks D (in order), then a Gaussian schedule or σ."""

    blocks: tuple[str, ...]
    T: int
    schedule: Schedule | None  # the noise block's ᾱ_t; None: a_t = 1, b_t = σ for t ≥ 1
    sigma: float = 0.0

    def degrade(self, x0: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """D_t(x_0): each deterministic block at strength t, in order (D_0 = identity); t may also be a (B,)
        tensor of t ≥ 1 where every block is batched (`cold.BATCHED`)."""
        x = x0
        if not isinstance(t, int) or t > 0:
            for b in self.blocks:
                x = cold.DEGRADE[b](x, t, self.T)
        return x

    def coefficients(self, t: int) -> tuple[float, float]:
        """(a_t, b_t)."""
        if self.schedule is not None:
            return float(self.schedule.abar[t]), float(self.schedule.bbar[t])
        return 1.0, (self.sigma if t > 0 else 0.0)

    def sample(self, x0: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t for an int t or a (B,) tensor of per-example timesteps."""
        if isinstance(t, int):
            a, b = self.coefficients(t)
            return a * self.degrade(x0, t) + b * noise
        if set(self.blocks) <= cold.BATCHED and bool((t >= 1).all()):  # a training batch, in one go
            x = self.degrade(x0, t)
            if self.schedule is not None:
                per = (-1,) + (1,) * (x0.dim() - 1)  # (B, 1, …) against points or images
                a = self.schedule.abar.to(x0.device)[t].to(x0.dtype).view(per)
                b = self.schedule.bbar.to(x0.device)[t].to(x0.dtype).view(per)
                return a * x + b * noise
            return x + self.sigma * noise
        return core.per_timestep(self.sample, x0, t, noise)

    def draw(self, x0: torch.Tensor, t: int | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.sample(x0, t, randn(x0.shape, generator).to(x0.device))

    def noise_from(self, x0: torch.Tensor, x_t: torch.Tensor, t: int) -> torch.Tensor:
        """F_t⁻¹: ε = (x_t − a_t D_t(x_0)) / b_t (b_t > 0)."""
        a, b = self.coefficients(t)
        if b == 0:
            raise ValueError("x_t = D_t(x_0) holds no noise to recover where b_t = 0")
        return (x_t - a * self.degrade(x0, t)) / b


def forward_of(spec: Spec):
    """The spec's forward process: `Composed` for points and images, discrete for words."""
    if spec.kind == "words":
        v = vocab(spec)
        if spec.forward == ("mask",):
            return discrete.MaskForward(v.length, v.V)
        return discrete.EditForward(v.length, v.V, distinct=True)
    T = spec.steps_T
    schedule = make(spec.schedule, T) if spec.gaussian else None
    return Composed(spec.degradations, T, schedule, spec.sigma)


def strip(spec: Spec, frames: int = 8, seed: int = 0) -> tuple[list[int], torch.Tensor | list[str]]:
    """x_0 → x_T before any training: timesteps and the states of one example (images), a cloud of 1,000
    (points) or 8 words, in data space."""
    fwd = forward_of(spec)
    T = fwd.T
    ts = sorted(set(torch.linspace(0, T, frames).round().long().tolist()))
    x0 = training_data(spec)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(x0), generator=g)[: {"points": 1000, "images": 1, "words": 8}[spec.kind]]
    x0 = x0[pick]
    if spec.kind == "words":
        return ts, [vocab(spec).decode(fwd.draw(x0, t, torch.Generator().manual_seed(seed))) for t in ts]
    noise = torch.randn(x0.shape, generator=g)
    return ts, torch.stack([to_data(spec, fwd.sample(x0, t, noise)) for t in ts])


def to_data(spec: Spec, x: torch.Tensor):
    """Model space → data: points as they are, images in [0, 1], words as strings."""
    if spec.kind == "words":
        return vocab(spec).decode(x.cpu())
    x = x.detach().float().cpu()
    return data.from_model(x) if spec.kind == "images" else x


# ---------------------------------------------------------------- 2./3. which reverse rules follow from F
def rules(spec: Spec) -> tuple[str, ...]:
    """Every reverse rule that applies, the post's first."""
    if spec.kind == "words":
        return discrete.MASK_RULES if spec.forward == ("mask",) else discrete.EDIT_RULES
    if not (spec.gaussian and not spec.degradations):
        return ("naive", "improved")
    return ("naive", "improved", *GAUSSIAN_RULES)


def not_offered(spec: Spec) -> dict[str, str]:
    """Rule → why it does not apply to this process."""
    if spec.kind == "words":
        why = "they need continuous data and Gaussian noise; words are tokens"
        return dict.fromkeys(GAUSSIAN_RULES, why)
    if spec.gaussian and not spec.degradations:
        return {}
    if spec.gaussian:
        why = (
            f"they need x_t = ᾱ_t x_0 + β̄_t ε (Gaussian in x_0); {'+'.join(spec.degradations)} "
            "makes the mean a degradation of x_0, not a multiple of it"
        )
    else:
        why = "they need Gaussian noise that grows with t (a noise block)"
    return dict.fromkeys(GAUSSIAN_RULES, why)


@dataclass(frozen=True)
class ComposedReverse:
    """naive: x_s = a_s D_s(x̂_0) + b_s ε'. improved: x_s = a_s D_s(x̂_0) + (b_s / b_t)(x_t − a_t D_t(x̂_0)),
    i.e. F_s(x̂_0, ε̂) with ε̂ = F_t⁻¹(x̂_0, x_t); at b_t = 0 the ratio is 1 (the σ → 0⁺ limit). The last
    step (s = 0) returns x̂_0: data is clean."""

    forward: Composed
    sampler: str

    def __post_init__(self) -> None:
        check_choice(self.sampler, "sampler", ("naive", "improved"))

    def predict_x0(self, posterior, x_t, t, s, generator):
        return posterior(x_t, t)

    def step(self, x_t, x0_hat, t, s, generator):
        if s == 0:
            return x0_hat
        fwd = self.forward
        (a_t, b_t), (a_s, b_s) = fwd.coefficients(t), fwd.coefficients(s)
        out = a_s * fwd.degrade(x0_hat, s)
        if self.sampler == "naive":
            return out + b_s * randn(x_t.shape, generator).to(x_t.device) if b_s > 0 else out
        ratio = b_s / b_t if b_t > 0 else 1.0
        return out + ratio * (x_t - a_t * fwd.degrade(x0_hat, t))


def start(spec: Spec, x0: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """x_T (n, …) where every rule begins: the forward's own x_T of random training examples (exact for
    points and images: D_T keeps only what survives, e.g. the mean grey), all [MASK] for mask, uniform
    random letters for edit (x_T of the any-letter edit)."""
    fwd = forward_of(spec)
    dev = generator.device
    if spec.kind == "words":
        v = vocab(spec)
        if spec.forward == ("mask",):
            return torch.full((n, v.length), v.MASK, device=dev)
        return torch.randint(0, v.V, (n, v.length), generator=generator, device=dev)
    idx = torch.randint(0, len(x0), (n,), generator=generator, device=dev).cpu()
    return fwd.draw(x0[idx].to(dev), fwd.T, generator)


def reverse_of(spec: Spec, sampler: str, stats: dict[str, torch.Tensor] | None = None):
    """The reverse rule `sampler` of this process (a clear ValueError, with the reason, where it does not apply)."""
    if sampler in not_offered(spec):
        raise ValueError(f"{sampler} does not apply to {spec.name}: {not_offered(spec)[sampler]}")
    check_choice(sampler, f"rule for {spec.name}", rules(spec))
    fwd = forward_of(spec)
    if spec.kind == "words":
        v = vocab(spec)
        if spec.forward == ("mask",):
            return discrete.MaskReverse(sampler, v.MASK)
        return discrete.EditReverse(sampler, v.V)
    if sampler in GAUSSIAN_RULES:
        from . import hot

        return hot.make_reverse(sampler, fwd.schedule, stats=stats)
    return ComposedReverse(fwd, sampler)


def timesteps(spec: Spec, sampler: str, steps: int | None) -> tuple[int, ...]:
    """Words: every position, one per step. Points and images: K respaced steps (default: 50 with noise,
    T without)."""
    from .schedule import respace

    T = forward_of(spec).T
    if spec.kind == "words":
        return tuple(range(1, T + 1))
    K = steps if steps is not None else min(T, 50 if spec.gaussian else T)
    if not 1 <= K <= T:
        raise ValueError(f"steps must be between 1 and T={T}, got {K}")
    return tuple(respace(T, K))


def plan(spec: Spec, posterior, sampler: str, n: int, generator: torch.Generator, *, steps: int | None = None,
         stats=None, x0: torch.Tensor | None = None) -> core.Plan:  # fmt: skip
    """A run of rule `sampler` from the process's x_T (drawn with `generator`)."""
    reverse = reverse_of(spec, sampler, stats)
    taus = timesteps(spec, sampler, steps)
    x0 = training_data(spec) if x0 is None else x0
    return core.Plan(posterior, reverse, start(spec, x0, n, generator), taus, generator)
