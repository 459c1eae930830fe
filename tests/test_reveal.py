"""The reveal rules beyond the post (confidence, margin, remask; edit confidence): their invariants, and
with the exact posterior which of them are exact samplers of q and which trade exactness for validity."""

from collections import Counter

import pytest
import torch

from udm import core, discrete
from udm import text_pipeline as tp

G = lambda seed=0: torch.Generator().manual_seed(seed)  # noqa: E731
V = 4  # letters a b c d; MASK = 4


def _words(*ws):
    return torch.tensor([[ord(c) - ord("a") for c in w] for w in ws])


def _run(reverse, posterior, x, t, seed=0, k=1):
    return list(discrete.plan(posterior, reverse, x, t, G(seed), k=k).steps())


class _Noisy:
    """A made-up network posterior: fixed random logits per position (B, l, V)."""

    def __call__(self, x_t, t):
        g = torch.Generator().manual_seed(int(x_t.sum()) + t)
        return discrete.Factorized(torch.randn(*x_t.shape, V, generator=g) * 2)


@pytest.mark.parametrize("rule", discrete.MASK_RULES)
@pytest.mark.parametrize("k", [1, 2])
def test_each_mask_rule_leaves_s_positions_hidden_after_every_step(rule, k):
    x = torch.full((64, 5), V)
    for step in _run(discrete.MaskReverse(rule, V), _Noisy(), x, 5, k=k):
        assert ((step.x_s == V).sum(1) == step.s).all(), (rule, step.t, step.s)
        if rule not in ("naive", "remask"):  # what was visible stays, t − s positions become final
            visible = step.x_t != V
            assert torch.equal(step.x_s[visible], step.x_t[visible])
            assert ((step.x_s != V) & ~visible).sum(1).eq(step.t - step.s).all()
    assert (step.x_s != V).all()


@pytest.mark.parametrize("rule", discrete.MASK_RULES)
def test_an_infill_pattern_is_respected_by_every_rule(rule):
    x = _words("a" * 5).expand(32, -1).clone()
    x[:, [1, 3]] = V  # a?a?a
    free = x == V
    final = _run(discrete.MaskReverse(rule, V, free=free), _Noisy(), x, 2)[-1].x_s
    assert (final[:, [0, 2, 4]] == 0).all() and (final != V).all()


def test_remask_hides_only_settled_free_positions_and_sometimes_does():
    x = torch.full((256, 5), V)
    free = torch.ones_like(x, dtype=torch.bool)
    free[:, 0] = False  # a position the run may not change
    x[:, 0] = 2
    hidden_again = 0
    for step in _run(discrete.MaskReverse("remask", V, free=free), _Noisy(), x, 4):
        again = (step.x_t != V) & (step.x_s == V)
        assert not again[:, 0].any()
        hidden_again += int(again.sum())
    assert hidden_again > 0  # settled letters were hidden again (p = 0.1 per step)


def test_confidence_reveals_the_surest_position_and_margin_the_widest_gap():
    logits = torch.tensor([[[5.0, 0, 0, 0], [2.0, 1.9, -9, -9], [0, 0, 0, 0]]]).log_softmax(-1)

    class Fixed:
        def __call__(self, x_t, t):
            return discrete.Factorized(logits.expand(x_t.shape[0], -1, -1))

    x = torch.full((200, 3), V)
    for rule, first in (("confidence", 0), ("margin", 0)):
        step = _run(discrete.MaskReverse(rule, V), Fixed(), x, 3)[0]
        revealed = (step.x_s != V).float().mean(0)
        assert revealed[first] > 0.95, (rule, revealed)
    # position 1's top-1 − top-2 gap is 0.1 / (about 0.52): margin reveals it last, before the flat position
    steps = _run(discrete.MaskReverse("margin", V), Fixed(), x, 3)
    assert (steps[1].x_s[:, 1] != V).float().mean() > 0.95


@pytest.mark.parametrize("rule", discrete.EDIT_RULES[1:])
def test_edit_rules_copy_t_minus_s_of_the_differing_positions(rule):
    x = torch.randint(0, V, (64, 5), generator=G(1))
    for step in _run(discrete.EditReverse(rule, V), _Noisy(), x, 5):
        changed = step.x_s != step.x_t
        assert changed.sum(1).eq(step.t - step.s).all() and not (changed & (step.x0_hat == step.x_t)).any()


def test_the_edit_confidence_order_scores_its_draw_with_the_probabilities_it_drew_from():
    x = torch.randint(0, V, (32, 5), generator=G(2))
    pred = _Noisy()(x, 3)
    draw = pred.sample_differing(x, 3, G(3))
    p = pred.position_probs(V)
    assert p is pred.position_probs(V)  # one softmax per step, not one per use
    assert torch.allclose(p, torch.softmax(pred.logits, -1))
    assert torch.allclose(pred.position_probs(V, 0.5), torch.softmax(pred.logits / 0.5, -1))
    scores = discrete._scores(pred, draw, V, 1.0, "confidence")
    assert torch.equal(scores, p.gather(2, draw.unsqueeze(2)).squeeze(2))


# ---------------------------------------------------------------- exact posterior: exactness and validity
WORDS = _words("ab", "ac", "db", "dc")
PRIOR = torch.tensor([0.45, 0.05, 0.2, 0.3])  # position 2 is b with 0.65: confidence reveals it first when drawn


def _freqs(rule: str, n: int = 8_000) -> torch.Tensor:
    post = discrete.ExactPosterior(WORDS, PRIOR, "mask", mask=V)
    final = core.last(discrete.plan(post, discrete.MaskReverse(rule, V), torch.full((n, 2), V), 2, G(7)).steps()).x_s
    index = {tuple(w.tolist()): i for i, w in enumerate(WORDS)}
    counts = Counter(index[tuple(r.tolist())] for r in final)  # KeyError if a non-word came out
    return torch.tensor([counts[i] / n for i in range(len(WORDS))])


@pytest.mark.parametrize("rule", ["improved", "remask"])
def test_random_order_rules_are_exact_samplers_of_the_weighted_list(rule):
    torch.testing.assert_close(_freqs(rule), PRIOR, atol=0.02, rtol=0)  # 3.6 standard errors at 8,000


def test_confidence_makes_only_words_but_not_with_their_frequencies():
    f = _freqs("confidence")  # only list words (else _freqs fails); "ac" 0.005 instead of 0.05
    assert abs(f[1] - 0.005) < 0.005 and f[0] > 0.475


def test_margin_makes_only_words_of_the_list():
    assert _freqs("margin", 4000).sum() == pytest.approx(1.0)


def test_the_cli_and_requests_name_each_rule(tiny_checkpoints, tmp_path):
    from udm import cli

    for rule in discrete.MASK_RULES:
        assert tp.TextRequest(process="mask", sampler=rule).sampler == rule
    with pytest.raises(ValueError, match="sampler for edit"):
        tp.TextRequest(process="edit", sampler="margin")
    out = tmp_path / "w.npz"
    assert cli.main(["sample", "--process", "mask", "--sampler", "margin", "-n", "4", "--out", str(out)]) == 0
    assert cli.main(["sample", "--process", "edit", "--sampler", "confidence", "-n", "4", "--out", str(out)]) == 0
