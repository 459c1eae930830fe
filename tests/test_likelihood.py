"""udm.likelihood: the exact probability of a word under the mask process's improved rule."""

import itertools
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
