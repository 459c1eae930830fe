"""Fixed-length text (UDM.md §4–5): the edit and mask forward processes, posteriors that predict x_0
(a network's per-position distribution, or the exact one over a finite word list), and the naive and
improved reverse rules.

Tokens are (B, l) long: characters 0..V-1, and MASK = V for the mask process. t counts the corrupted
positions, t = 0..l.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations

import torch
import torch.nn.functional as nnf

from . import core

SAMPLERS: tuple[str, ...] = ("naive", "improved")  # the post's rules, both processes
# Reveal rules from elsewhere, each a UDM reverse rule (x̂_0 ~ q(x_0|x_t), then the rule decides which
# positions become final): which positions is what they change.
MASK_RULES: tuple[str, ...] = (*SAMPLERS, "confidence", "margin", "remask")
EDIT_RULES: tuple[str, ...] = (*SAMPLERS, "confidence")
RULE_SOURCES = {
    "naive": "the post",
    "improved": "the post (random order: an exact sampler of q)",
    "confidence": "MaskGIT, Chang et al. 2022: the drawn letters the model is surest of first",
    "margin": "Kim et al. 2025: the positions with the largest top-1 − top-2 probability first",
    "remask": "ReMDM, Wang et al. 2025: a settled letter may be hidden again (p = 0.1 per step)",
}
REMASK = 0.1  # ReMDM: the chance that a settled free position is hidden again at a step


def _uniform(shape, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(tuple(shape), generator=generator, device=generator.device)


def _pick(candidates: torch.Tensor, counts: torch.Tensor | int, generator: torch.Generator) -> torch.Tensor:
    """Per row, a uniformly random subset of size counts[b] of the True positions of `candidates` (B, l)."""
    score = _uniform(candidates.shape, generator).masked_fill(~candidates, 2.0)  # excluded positions sort last
    rank = score.argsort(1).argsort(1)
    counts = torch.as_tensor(counts, device=candidates.device).view(-1, 1)
    return (rank < counts) & candidates


# ---------------------------------------------------------------- 1. forward processes
@dataclass(frozen=True)
class MaskForward:
    """x_t: t random positions of x_0 replaced by MASK (= V)."""

    length: int
    V: int

    @property
    def T(self) -> int:
        return self.length

    def draw(self, x0: torch.Tensor, t: int | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """x_t (B, l) for an int t or a (B,) tensor of per-example counts."""
        hide = _pick(torch.ones_like(x0, dtype=torch.bool), t, generator)
        return torch.where(hide, torch.full_like(x0, self.V), x0)


@dataclass(frozen=True)
class EditForward:
    """x_t: t random positions of x_0 replaced by a random token; v2 (`distinct`) forces a *different*
    token, so x_t and x_0 differ in exactly t positions and the edit can be read off (x_0 ≠ x_t there)."""

    length: int
    V: int
    distinct: bool = True

    @property
    def T(self) -> int:
        return self.length

    def draw(self, x0: torch.Tensor, t: int | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """x_t (B, l) for an int t or a (B,) tensor of per-example counts."""
        where = _pick(torch.ones_like(x0, dtype=torch.bool), t, generator)
        u = _uniform(x0.shape, generator)
        if self.distinct:
            new = (x0 + 1 + (u * (self.V - 1)).long().clamp_max(self.V - 2)) % self.V
        else:
            new = (u * self.V).long().clamp_max(self.V - 1)
        return torch.where(where, new, x0)


# ---------------------------------------------------------------- 2. posterior predictions q(x_0 | x_t)
class Prediction:
    """What a posterior returns for a batch: a distribution over x_0 to draw from."""

    def sample(self, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
        """x̂_0 (B, l)."""
        raise NotImplementedError

    def sample_differing(
        self, x_t: torch.Tensor, t: int, generator: torch.Generator, temperature: float = 1.0
    ) -> torch.Tensor:
        """x̂_0 (B, l) conditioned on differing from x_t in exactly t positions."""
        raise NotImplementedError

    def position_probs(self, V: int, temperature: float = 1.0) -> torch.Tensor:
        """(B, l, V) each position's distribution (the marginals, where x̂_0 is drawn as a whole)."""
        raise NotImplementedError

    def sample_hidden(
        self, x_t: torch.Tensor, mask: int, generator: torch.Generator, temperature: float = 1.0
    ) -> torch.Tensor:
        """x̂_0 (B, l) for the mask process: drawn at the hidden positions (x_t = mask), x_t's tokens elsewhere."""
        return torch.where(x_t == mask, self.sample(generator, temperature), x_t)


def categorical(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One draw per row of p (N, V), non-negative weights, by the inverse CDF: index i with
    c_{i−1} ≤ u < c_i, where c is the running sum and u ~ U[0, c_V). Exact, and far quicker than
    torch.multinomial over a large vocabulary (3,464 Chinese characters: ~10×); a zero weight is never drawn."""
    c = p.float().cumsum(-1)
    u = torch.rand(c.shape[0], 1, generator=generator, device=c.device) * c[:, -1:]
    return torch.searchsorted(c, u, right=True).clamp_max(p.shape[-1] - 1).squeeze(-1)


@dataclass
class Factorized(Prediction):
    """Independent per-position categoricals (a non-autoregressive network's output): logits (B, l, V)."""

    logits: torch.Tensor
    _kept: dict = field(default_factory=dict, compare=False, repr=False)  # temperature → probabilities

    def chunk(self, n: int) -> list[Factorized]:
        """The batch split in n (core.Batched)."""
        return [Factorized(x) for x in self.logits.chunk(n)]

    def _probs(self, temperature: float) -> torch.Tensor:
        """The softmax, computed once per temperature: a rule may draw from it and then score its draw."""
        if temperature not in self._kept:
            logits = self.logits.float()
            self._kept[temperature] = torch.softmax(logits if temperature == 1 else logits / temperature, -1)
        return self._kept[temperature]

    def position_probs(self, V, temperature=1.0):
        return self._probs(temperature)

    def sample(self, generator, temperature=1.0):
        p = self._probs(temperature)
        b, n, v = p.shape
        return categorical(p.view(-1, v), generator).view(b, n)

    def sample_differing(self, x_t, t, generator, temperature=1.0):
        """Exact draw from the product distribution restricted to |{i: x̂_i ≠ x_t,i}| = t: choose the set S
        of differing positions with P(S) ∝ Π_{i∈S} (1 − p_i(x_t,i)) Π_{i∉S} p_i(x_t,i) (enumerated,
        l is small), then draw each x̂_i, i ∈ S, from p_i with x_t,i excluded."""
        p = self._probs(temperature)  # shared with a rule that scores its draw
        n = p.shape[1]
        here = x_t.unsqueeze(2)
        same = p.gather(2, here).squeeze(2)  # (B, l)
        log_same, log_other = same.log(), (1 - same).log()
        # where p(x_t,i) is all but 1, float32 loses 1 − p (at a low temperature it is exactly 1, and every
        # subset would weigh 0): those positions' other letters are taken in log space, from the logits
        sure = same > 1 - 1e-4
        if sure.any():
            logits = self.logits[sure].float()
            log_p = torch.log_softmax(logits if temperature == 1 else logits / temperature, -1)
            sure_others = log_p.scatter(1, x_t[sure].unsqueeze(1), float("-inf"))
            log_other[sure] = torch.logsumexp(sure_others, -1)
        subsets = torch.zeros(math.comb(n, t), n, dtype=torch.bool, device=p.device)
        for k, s in enumerate(combinations(range(n), t)):
            subsets[k, list(s)] = True
        logw = torch.where(subsets[None], log_other[:, None], log_same[:, None]).sum(-1)  # (B, C)
        choice = torch.multinomial(torch.softmax(logw, 1), 1, generator=generator).squeeze(1)
        differ = subsets[choice]  # (B, l)
        weights = p[differ].scatter(1, x_t[differ].unsqueeze(1), 0.0)  # the other letters, drawn where chosen
        if sure.any():
            chosen = sure[differ]
            weights[chosen] = torch.exp(sure_others[differ[sure]] - log_other[sure & differ].unsqueeze(1))
        out = x_t.clone()
        out[differ] = categorical(weights, generator)
        return out


KNOWN_LOGIT = -1e4  # a known position's logit of every token but its own, in a dense view


@dataclass
class HiddenFactorized(Prediction):
    """Independent per-position categoricals where only the hidden positions of x_t are uncertain (the
    mask process): `logits` (H, V) for some hidden positions, `index` (B, l) the row of `logits` of each
    hidden position of x_t (rows may be shared by equal inputs), −1 at the visible ones, which are x_t's."""

    x_t: torch.Tensor
    logits: torch.Tensor
    index: torch.Tensor

    def chunk(self, n: int) -> list[HiddenFactorized]:
        """The batch split in n (core.Batched); the rows of `logits` are shared."""
        return [HiddenFactorized(x, self.logits, i) for x, i in zip(self.x_t.chunk(n), self.index.chunk(n))]

    def _hidden_probs(self, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.index >= 0
        return hidden, torch.softmax(self.logits.float() / temperature, -1)[self.index[hidden]]

    def sample(self, generator, temperature=1.0):
        hidden, p = self._hidden_probs(temperature)
        out = self.x_t.clone()
        out[hidden] = categorical(p, generator)
        return out

    def position_probs(self, V, temperature=1.0):
        return torch.softmax(self.dense_logits().float() / temperature, -1)  # a visible position: its token, 1

    def dense_logits(self) -> torch.Tensor:
        """(B, l, V) logits: the network's at hidden positions; 0 for x_t's token, KNOWN_LOGIT for the others
        at visible ones."""
        hidden = self.index >= 0
        out = torch.full((*self.x_t.shape, self.logits.shape[-1]), KNOWN_LOGIT, device=self.logits.device)
        out = out.to(self.logits.dtype)
        out[hidden] = self.logits[self.index[hidden]]
        seen = ~hidden
        out[seen] = out[seen].scatter(1, self.x_t[seen].unsqueeze(1), 0.0)
        return out


@dataclass
class Enumerated(Prediction):
    """A distribution over a finite word list: weights (B, W) over words (W, l)."""

    weights: torch.Tensor
    words: torch.Tensor

    def chunk(self, n: int) -> list[Enumerated]:
        """The batch split in n (core.Batched)."""
        return [Enumerated(w, self.words) for w in self.weights.chunk(n)]

    def _draw(self, w: torch.Tensor, generator, temperature) -> torch.Tensor:
        w = w.clamp_min(0) ** (1 / temperature)
        return self.words[categorical(w, generator)]

    def sample(self, generator, temperature=1.0):
        return self._draw(self.weights, generator, temperature)

    def position_probs(self, V, temperature=1.0):
        w = self.weights.clamp_min(0) ** (1 / temperature)
        return Enumerated(w, self.words).marginals(V)

    def marginals(self, V: int) -> torch.Tensor:
        """(B, l, V) the per-position distributions of x_0 under these weights."""
        w = self.weights / self.weights.sum(1, keepdim=True)
        out = w.new_zeros(w.shape[0], self.words.shape[1], V)
        for i in range(self.words.shape[1]):
            out[:, i].index_add_(1, self.words[:, i].to(w.device), w)
        return out

    def sample_differing(self, x_t, t, generator, temperature=1.0):
        ham = (self.words[None] != x_t[:, None]).sum(-1)  # (B, W)
        w = self.weights * (ham == t)
        w = torch.where(w.sum(1, keepdim=True) > 0, w, self.weights)  # nothing at distance t: leave it free
        return self._draw(w, generator, temperature)


@dataclass
class OneEdit(Prediction):
    """The edit process's q(x_0 | x_t) at t = 1 by Bayes' rule from a model of x_0's letters given the others.

    x_t is x_0 with one letter replaced, so x_0 = x_t with some position i set to some c, and
    q(i, c | x_t) ∝ p(x_t[i ← c]) = p(x_t) · m_i(c) / m_i(x_t,i), with m_i = p(x_0^i | the other letters
    of x_t) (a mask model with position i hidden: `logits` (B, l, V)). v2 (a *different* letter) draws
    c ≠ x_t,i; v1 (any letter) also c = x_t,i, which leaves x_t as it is (total weight l, the C(l, 1)
    ways). Exact where x_t is itself a word of p; where p(x_t) = 0 the positions whose other letters
    fit a word all get weight ∞ — in floating point, equal weight, where the exact rule weighs them by
    p(x_{−i})."""

    x_t: torch.Tensor
    logits: torch.Tensor
    _kept: dict = field(default_factory=dict, compare=False, repr=False)  # (temperature, distinct) → weights

    def chunk(self, n: int) -> list[OneEdit]:
        """The batch split in n (core.Batched)."""
        return [OneEdit(x, g) for x, g in zip(self.x_t.chunk(n), self.logits.chunk(n))]

    def weights(self, temperature: float = 1.0, distinct: bool = True) -> torch.Tensor:
        """(B, l, V) each single edit (i, c)'s probability, ∝ (m_i(c) / m_i(x_t,i))^(1/T); 0 at c = x_t,i if
        `distinct`. Computed from log-probabilities, so that a low temperature neither underflows nor ties
        positions; a zero probability counts as e^KNOWN_LOGIT, so a letter m_i rules out has no weight.
        Computed once per (temperature, distinct): a rule may draw from them and then score its draw."""
        key = (temperature, distinct)
        if key not in self._kept:
            logm = torch.log_softmax(self.logits.float() / temperature, -1).clamp_min(KNOWN_LOGIT)
            here = self.x_t.unsqueeze(2)
            d = logm - logm.gather(2, here)
            if distinct:
                d = d.scatter(2, here, float("-inf"))
            self._kept[key] = torch.softmax(d.flatten(1), 1).view_as(d)
        return self._kept[key]

    def _draw(self, w: torch.Tensor, generator) -> torch.Tensor:
        b, n, v = w.shape
        k = categorical(w.reshape(b, -1), generator)
        rows = torch.arange(b, device=w.device)
        out = self.x_t.clone()
        out[rows, k // v] = k % v
        return out

    def sample(self, generator, temperature=1.0):
        return self._draw(self.weights(temperature, distinct=False), generator)

    def sample_differing(self, x_t, t, generator, temperature=1.0):
        if t != 1:
            raise ValueError(f"one edit's posterior is for t = 1, asked for t = {t}")
        return self._draw(self.weights(temperature), generator)

    def position_probs(self, V, temperature=1.0):
        """The marginals of the v2 posterior (the one the improved and confidence rules draw from)."""
        p = self.weights(temperature)
        return p.scatter_add(2, self.x_t.unsqueeze(2), (1 - p.sum(2)).unsqueeze(2))


Posterior = Callable[[torch.Tensor, int], Prediction]


@dataclass(frozen=True, eq=False)  # two are the same posterior only if they are one object (they hold tensors)
class ExactPosterior:
    """The true q(x_0 | x_t) of a forward process when x_0 is drawn from a finite list (W, l) with
    probabilities `prior` (W,). Mask: the words that agree on the unmasked positions. Edit v2: the words
    at Hamming distance exactly t. Edit v1: words at distance h ≤ t, weighted C(l − h, t − h) (the ways to
    choose the t replaced positions around the h changed ones; each draw has the same V^−t)."""

    words: torch.Tensor
    prior: torch.Tensor
    process: str  # "mask", "edit-v1" or "edit-v2"
    mask: int = -1  # the MASK token (mask process)
    chunk: int = 512

    def __call__(self, x_t: torch.Tensor, t: int) -> Enumerated:
        words, prior = self.words.to(x_t.device), self.prior.to(x_t.device).float()
        n = words.shape[1]
        out = []
        for xb in x_t.split(self.chunk):
            same = _matches(xb, words)  # (b, W) positions where x_t shows the word's token
            if self.process == "mask":
                ok = same == (xb != self.mask).sum(1, keepdim=True)  # every visible position agrees
                w = prior * ok
            else:
                ham = n - same  # (b, W)
                if self.process == "edit-v2":
                    w = prior * (ham == t)
                else:
                    ways = torch.tensor([math.comb(n - h, t - h) if h <= t else 0 for h in range(n + 1)])
                    w = prior * ways.to(xb.device)[ham.long()].float()
            out.append(torch.where(w.sum(1, keepdim=True) > 0, w, prior.expand_as(w)))  # off-support x_t
        return Enumerated(torch.cat(out), words)


def _matches(x: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
    """(b, W) how many positions of each row of x (b, l) hold the token of each word (W, l): one matrix
    product of one-hot codes where they are small (a few letters), else a comparison per position."""
    K = int(max(words.max(), x.max())) + 1
    n = words.shape[1]
    if n * K <= 4096:
        code = lambda z: nnf.one_hot(z, K).flatten(1).float()  # noqa: E731
        return code(x) @ code(words).T  # whole numbers, exact in float32
    return sum((x[:, i, None] == words[None, :, i]).long() for i in range(n))


# ---------------------------------------------------------------- 3. reverse rules
def _order(scores: torch.Tensor, candidates: torch.Tensor, counts, generator: torch.Generator) -> torch.Tensor:
    """Per row, the counts[b] True positions of `candidates` (B, l) with the highest scores (ties broken at
    random)."""
    jitter = _uniform(scores.shape, generator) * 1e-6
    score = (scores.float() + jitter).masked_fill(~candidates, float("-inf"))
    rank = score.argsort(1, descending=True).argsort(1)
    counts = torch.as_tensor(counts, device=candidates.device).view(-1, 1)
    return (rank < counts) & candidates


def _scores(pred: Prediction, x0: torch.Tensor, V: int, temperature: float, rule: str) -> torch.Tensor:
    """(B, l) how sure the posterior is at each position: the drawn token's probability (confidence) or
    the top-1 − top-2 gap (margin)."""
    p = pred.position_probs(V, temperature)
    if rule == "margin":
        top = p.topk(2, dim=-1).values
        return top[..., 0] - top[..., 1]
    return p.gather(2, x0.clamp_max(V - 1).unsqueeze(2)).squeeze(2)


@dataclass(frozen=True)
class MaskReverse:
    """naive: x̂_0 ~ q(x_0|x_t), then hide s random free positions of x̂_0 (anywhere).
    improved: keep the visible tokens, reveal t − s of the hidden positions with x̂_0's tokens, at random
    (t − s = 1 is the post's merged step, almost Gibbs sampling).
    confidence / margin: reveal the t − s hidden positions the posterior is surest of (MaskGIT's drawn-token
    probability; Kim et al.'s top-1 − top-2 margin) — more valid words, no longer an exact sampler of q.
    remask (ReMDM): as improved, but each settled free position is hidden again with probability REMASK
    (at most s of them), and as many more are revealed: x_s still has s hidden positions.
    `free` (B, l) marks the positions a run may change (infill: the blanks of the pattern); None = all.
    `V` (the letters, MASK = V) is needed by confidence and margin."""

    sampler: str
    mask: int
    temperature: float = 1.0
    free: torch.Tensor | None = field(default=None, compare=False)
    _last: dict = field(default_factory=dict, compare=False, repr=False)  # the last guess's scores, for its step

    def __post_init__(self) -> None:
        if self.sampler not in MASK_RULES:
            raise ValueError(f"unknown sampler {self.sampler!r}; valid: {', '.join(MASK_RULES)}")

    def predict_x0(self, posterior, x_t, t, s, generator):
        pred = posterior(x_t, t)
        x0 = pred.sample_hidden(x_t, self.mask, generator, self.temperature)  # visible stays
        if self.sampler in ("confidence", "margin"):  # (one rule object serves one run: step t comes next)
            self._last["scores"] = _scores(pred, x0, self.mask, self.temperature, self.sampler)
        return x0

    def step(self, x_t, x0_hat, t, s, generator):
        hidden = x_t == self.mask
        free = torch.ones_like(x_t, dtype=torch.bool) if self.free is None else self.free.to(x_t.device)
        if self.sampler == "naive":
            return torch.where(_pick(free, s, generator), torch.full_like(x_t, self.mask), x0_hat)
        if self.sampler in ("confidence", "margin"):
            reveal = _order(self._last.pop("scores"), hidden, t - s, generator)
            return torch.where(reveal, x0_hat, x_t)
        again = torch.zeros_like(hidden)
        if self.sampler == "remask" and s > 0:
            settled = free & ~hidden
            n = (_uniform(x_t.shape, generator) < REMASK).logical_and(settled).sum(1).clamp_max(s)
            again = _pick(settled, n, generator)
        reveal = _pick(hidden, t - s + again.sum(1), generator)
        out = torch.where(reveal, x0_hat, x_t)
        return torch.where(again, torch.full_like(x_t, self.mask), out)


@dataclass(frozen=True)
class EditReverse:
    """naive (v1): x̂_0 ~ q(x_0|x_t), then s random positions of x̂_0 get random tokens (any token).
    improved (v2): x̂_0 ~ q(x_0|x_t) constrained to differ from x_t in exactly t positions; copy x̂_0's
    token into t − s of them (one per step), at random. confidence: copy those whose drawn token the
    posterior is surest of."""

    sampler: str
    V: int
    temperature: float = 1.0
    _last: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.sampler not in EDIT_RULES:
            raise ValueError(f"unknown sampler {self.sampler!r}; valid: {', '.join(EDIT_RULES)}")

    def predict_x0(self, posterior, x_t, t, s, generator):
        pred = posterior(x_t, t)
        if self.sampler == "naive":
            return pred.sample(generator, self.temperature)
        x0 = pred.sample_differing(x_t, t, generator, self.temperature)
        if self.sampler == "confidence":
            self._last["scores"] = _scores(pred, x0, self.V, self.temperature, "confidence")
        return x0

    def step(self, x_t, x0_hat, t, s, generator):
        if self.sampler == "naive":
            return EditForward(x_t.shape[1], self.V, distinct=False).draw(x0_hat, s, generator)
        differ = x0_hat != x_t
        if self.sampler == "confidence":
            copy = _order(self._last.pop("scores"), differ, t - s, generator)
        else:
            copy = _pick(differ, t - s, generator)
        return torch.where(copy, x0_hat, x_t)


def timesteps(t_start: int, k: int = 1) -> list[int]:
    """Increasing τ's for a run from t_start down by k per step: e.g. (5, 2) → [1, 3, 5]."""
    if t_start < 1 or k < 1:
        raise ValueError(f"need t ≥ 1 and k ≥ 1, got t = {t_start}, k = {k}")
    return sorted(range(t_start, 0, -k))


def plan(
    posterior: Posterior, reverse, x_t: torch.Tensor, t_start: int, generator: torch.Generator, k: int = 1
) -> core.Plan:
    """A run from x_t at t_start to x_0, k corruptions undone per step."""
    return core.Plan(posterior, reverse, x_t, tuple(timesteps(t_start, k)), generator)
