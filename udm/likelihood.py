"""The exact probability that the mask process's improved rule, one position per step from all [MASK],
ends at a given word: no sampling noise in the valid and novel-valid shares, and a held-out likelihood.

The rule reveals a uniformly random hidden position i of x_t with a token drawn from q(x_0^i | x_t), so

    p(x) = Σ over the l! reveal orders of Π_steps (1 / t) q(x^i | x_t),

and the sum runs over the 2^l sets of hidden positions: P(H \\ {i}) += P(H) · q(x^i | x with H hidden) / |H|,
from H = all positions (P = 1) down to H = ∅ (P = p(x)). One network evaluation per set and word.

Scoring the rule's own samples this way gives the entropy of the words it makes, and `calibrate` finds the
temperature at which that entropy is the data's (Braverman et al., 2020, "Calibration, entropy rates, and
memory in language models": a model's generations are calibrated when their entropy matches the data's).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import combinations

import torch

from . import core, discrete
from .discrete import Posterior


def _hidden_sets(n: int, t: int) -> list[int]:
    """The bit masks of the t-element subsets of n positions."""
    return [sum(1 << i for i in c) for c in combinations(range(n), t)]


@torch.no_grad()
def improved_probability(
    posterior: Posterior, x0: torch.Tensor, mask: int, V: int, chunk: int = 2048, temperature: float = 1.0
) -> torch.Tensor:
    """(B,) float64: the probability that the improved rule with k = 1, started from l [MASK]s, drawing
    at `temperature`, makes each row of x0 (B, l)."""
    out = [_probability(posterior, xb, mask, V, temperature) for xb in x0.split(chunk)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def _probability(posterior: Posterior, x0: torch.Tensor, mask: int, V: int, temperature: float) -> torch.Tensor:
    b, n = x0.shape
    P = {(1 << n) - 1: torch.ones(b, dtype=torch.float64, device=x0.device)}
    for t in range(n, 0, -1):
        sets = _hidden_sets(n, t)
        hidden = torch.tensor([[(h >> i) & 1 for i in range(n)] for h in sets], dtype=torch.bool, device=x0.device)
        x_t = torch.where(hidden[:, None], mask, x0[None]).reshape(-1, n)  # (sets · b, l), set-major
        probs = posterior(x_t, t).position_probs(V, temperature).double()
        q = probs.gather(2, x0.repeat(len(sets), 1).unsqueeze(2)).squeeze(2).view(len(sets), b, n)
        for k, h in enumerate(sets):
            for i in range(n):
                if (h >> i) & 1:
                    rest = h & ~(1 << i)
                    P[rest] = P.get(rest, 0.0) + P[h] * q[k, :, i] / t
    return P[0]


def on_splits(posterior: Posterior, name: str, n_train: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """improved_probability of the words of list `name`: (n_train training words, a fixed draw, or all of
    them when None; every held-out word)."""
    from . import text

    vocab, train = text.vocab(name), text.tokens(name, "train")
    if n_train is not None:
        train = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:n_train]]
    held = text.tokens(name, "test")
    return tuple(improved_probability(posterior, x, vocab.MASK, vocab.V) for x in (train, held))


def log2_mean(p: torch.Tensor) -> float:
    """Mean −log₂ p over rows (bits per word); rows of probability 0 count as 64 bits, not infinity."""
    return float((-torch.log2(p.clamp_min(2.0**-64))).mean()) if len(p) else math.nan


@torch.no_grad()
def entropy(
    posterior: Posterior,
    mask: int,
    V: int,
    length: int,
    n: int = 2000,
    temperature: float = 1.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[float, float]:
    """(bits, standard error): the entropy of the words the improved rule (k = 1, from all [MASK]) makes at
    `temperature`, −log₂ p averaged over n of its own words, each scored exactly."""
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.full((n, length), mask, device=device)
    plan = discrete.plan(posterior, discrete.MaskReverse("improved", mask, temperature), x, length, g)
    words = core.last(plan.steps()).x_s
    p = improved_probability(posterior, words, mask, V, temperature=temperature)
    bits = -torch.log2(p.clamp_min(2.0**-64))
    return float(bits.mean()), float(bits.std() / math.sqrt(n))


def bisect_temperature(
    bits_at: Callable[[float], float], target: float, low: float = 0.05, high: float = 2.0, iterations: int = 10
) -> float:
    """The temperature in [low, high], to two significant digits, at which `bits_at` (an entropy of the words a
    rule makes, growing with the temperature) is `target`: bisection on log τ. A posterior still above the
    target at `low`, or below it at `high`, gets that end."""
    lo, hi = math.log(low), math.log(high)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if bits_at(math.exp(mid)) > target else (mid, hi)
    return float(f"{min(high, max(low, math.exp((lo + hi) / 2))):.2g}")


def calibrate(
    posterior: Posterior,
    mask: int,
    V: int,
    length: int,
    target_bits: float,
    n: int = 2000,
    device: torch.device | str = "cpu",
) -> tuple[float, float]:
    """(τ, bits): the temperature at which the improved rule's words have `target_bits` of entropy
    (`bisect_temperature`), and their entropy there."""

    def bits_at(tau: float) -> float:
        return entropy(posterior, mask, V, length, n, tau, device=device)[0]

    tau = bisect_temperature(bits_at, target_bits)
    return tau, bits_at(tau)
