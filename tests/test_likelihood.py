"""udm.likelihood: the exact probability of a word under the mask process's improved rule."""

import itertools
import math
from collections import Counter

import pytest
import torch

from udm import discrete, likelihood

V, L = 3, 3  # letters a b c; MASK = 3; words of three letters
ALL = torch.tensor(list(itertools.product(range(V), repeat=L)))  # all 27 words


class _Linear:
    """A made-up network posterior: each position's logits a fixed random function of the whole row x_t."""

    def __init__(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(L, L, V + 1, V, generator=g) * 1.5  # (position, other position, its token)

    def __call__(self, x_t, t):
        logits = sum(self.table[:, j, x_t[:, j]].transpose(0, 1) for j in range(L))  # (B, L, V)
        return discrete.Factorized(logits)


def test_an_arbitrary_posterior_gives_every_word_a_share_and_the_shares_sum_to_one():
    p = likelihood.improved_probability(_Linear(), ALL, V, V)
    assert (p > 0).all()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-6)  # float32 softmax


def test_with_the_exact_posterior_the_list_comes_back_with_its_weights():
    words = torch.tensor([[0, 1, 2], [0, 1, 0], [2, 2, 2], [1, 0, 0]])
    prior = torch.tensor([0.4, 0.3, 0.2, 0.1])
    exact = discrete.ExactPosterior(words, prior, "mask", mask=V)
    got = likelihood.improved_probability(exact, ALL, V, V)
    want = torch.zeros(len(ALL), dtype=torch.float64)
    for w, q in zip(words, prior):
        want[(ALL == w).all(1)] = float(q)
    assert torch.allclose(got, want, atol=1e-6)


def test_it_is_the_frequency_at_which_the_sampler_makes_each_word():
    posterior, n = _Linear(seed=1), 40_000
    x = torch.full((n, L), V)
    run = discrete.plan(posterior, discrete.MaskReverse("improved", V), x, L, torch.Generator().manual_seed(0))
    final = list(run.steps())[-1].x_s
    seen = Counter(tuple(r) for r in final.tolist())
    p = likelihood.improved_probability(posterior, ALL, V, V)
    for w, q in zip(ALL.tolist(), p.tolist()):
        se = (q * (1 - q) / n) ** 0.5
        assert abs(seen[tuple(w)] / n - q) < 4 * se + 1e-4, (w, seen[tuple(w)] / n, q)
    # the rule's order matters: the product of the all-[MASK] marginals is another distribution
    first = posterior(x[:1], L).position_probs(V)[0].double()
    product = torch.stack([first[torch.arange(L), w].prod() for w in ALL])
    assert (product - p).abs().max() > 0.02


def test_bits_per_word():
    assert likelihood.log2_mean(torch.tensor([0.5, 0.25], dtype=torch.float64)) == pytest.approx(1.5)
    assert likelihood.log2_mean(torch.tensor([0.0], dtype=torch.float64)) == pytest.approx(64.0)


class _Tempered:
    """_Linear's logits divided by `by` (> 1: flatter, < 1: sharper)."""

    def __init__(self, by, seed=1):
        self.net, self.by = _Linear(seed), by

    def __call__(self, x_t, t):
        return discrete.Factorized(self.net(x_t, t).logits / self.by)


def _shannon(posterior):
    p = likelihood.improved_probability(posterior, ALL, V, V)
    return float(-(p * p.log2()).sum())


def test_the_entropy_of_the_rule_s_words():
    words = torch.tensor([[0, 1, 2], [0, 1, 0], [2, 2, 2], [1, 0, 0], [1, 1, 1], [2, 0, 1]])
    uniform = discrete.ExactPosterior(words, torch.full((6,), 1 / 6), "mask", mask=V)
    bits, se = likelihood.entropy(uniform, V, V, L, n=500)
    assert bits == pytest.approx(math.log2(6), abs=1e-5) and se < 1e-5  # every word has p = 1/6 exactly
    bits, se = likelihood.entropy(_Tempered(1.0), V, V, L, n=4000)
    assert abs(bits - _shannon(_Tempered(1.0))) < 4 * se and se < 0.03
    assert _shannon(_Tempered(2.0)) > _shannon(_Tempered(1.0)) + 0.5 > _shannon(_Tempered(0.5)) + 1.0


@pytest.mark.parametrize("by", [2.0, 0.8])
def test_calibration_finds_the_temperature_that_undoes_a_flattening_or_a_sharpening(by):
    target = _shannon(_Tempered(1.0))
    tau, bits = likelihood.calibrate(_Tempered(by), V, V, L, target, n=4000)
    assert tau == pytest.approx(1 / by, rel=0.05)
    assert bits == pytest.approx(target, abs=0.1)


def test_the_bisection_lands_on_the_temperature_of_the_target_entropy_or_at_an_end():
    def bits_at(tau):  # an entropy that grows with τ: 12 bits at τ = 0.5
        return 12 + 4 * math.log2(tau / 0.5)

    assert likelihood.bisect_temperature(bits_at, 12.0) == 0.5
    assert likelihood.bisect_temperature(bits_at, 12 + 4 * math.log2(0.137 / 0.5)) == 0.14  # two digits
    assert likelihood.bisect_temperature(bits_at, 0.0) == 0.062  # where 12 + 4 log₂(τ / 0.5) = 0
    assert likelihood.bisect_temperature(bits_at, -10) == 0.05 and likelihood.bisect_temperature(bits_at, 40) == 2.0
