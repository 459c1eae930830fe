"""The contract and the sampling loop: records, determinism, respacing, and clear errors."""

import pytest
import torch

from udm import core, data, hot, oracle, schedule
from udm.device import make_generator

SCH = schedule.linear()
POST = hot.EpsPosterior(oracle.MixtureEps(data.gaussians8(), SCH), SCH)


def _records(name="ddpm", K=20, seed=0, n=64):
    return list(hot.plan(POST, hot.make_reverse(name, SCH), (n, 2), K, make_generator(seed, "cpu")).steps())


def test_records_chain_and_end_at_x0_hat():
    recs = _records()
    assert [r.index for r in recs] == list(range(20))
    assert recs[0].t == 1000 and recs[-1].t == 1 and recs[-1].s == 0
    assert [r.t for r in recs] == sorted((r.t for r in recs), reverse=True)
    for a, b in zip(recs, recs[1:]):
        assert a.s == b.t and a.x_s is b.x_t
    # at s = 0 the general step returns x̂_0 itself (ᾱ_0 = 1, β̄_0 = 0)
    torch.testing.assert_close(recs[-1].x_s, recs[-1].x0_hat)
    with pytest.raises(AttributeError):  # frozen
        recs[0].t = 3


@pytest.mark.parametrize("name", ["ddpm", "ddim"])
def test_same_seed_same_samples_other_seed_others(name):
    a, b, c = _records(name, seed=1), _records(name, seed=1), _records(name, seed=2)
    for ra, rb in zip(a, b):
        assert torch.equal(ra.x_s, rb.x_s) and torch.equal(ra.x0_hat, rb.x0_hat)
    assert not torch.equal(a[-1].x_s, c[-1].x_s)


def test_ddim_eta0_is_deterministic_given_x_T():
    x_T = torch.randn(8, 2)
    rev = hot.make_reverse("ddim", SCH)
    outs = [
        core.last(core.sample(POST, rev, x_T, schedule.respace(1000, 10), make_generator(s, "cpu"))).x_s for s in (0, 1)
    ]
    assert torch.equal(outs[0], outs[1])


def test_respace():
    assert schedule.respace(1000, 1000) == list(range(1, 1001))
    assert schedule.respace(1000, 1) == [1000]
    assert schedule.respace(1000, 4) == [1, 334, 667, 1000]
    assert schedule.respace(100, 10) == [1, 12, 23, 34, 45, 56, 67, 78, 89, 100]
    for bad in (0, 1001):
        with pytest.raises(ValueError, match="between 1 and T"):
            schedule.respace(1000, bad)


def test_schedules_are_monotone_and_end_noisy():
    for name in ("linear", "cosine"):
        s = schedule.make(name, 1000)
        assert torch.all(s.abar[1:] < s.abar[:-1])
        assert s.abar[-1] < 0.01 and s.abar[0] == 1
        torch.testing.assert_close(s.abar**2 + s.bbar**2, torch.ones(1001, dtype=torch.float64))
    with pytest.raises(ValueError, match="valid: linear, cosine"):
        schedule.make("sigmoid")


def test_forward_noise_round_trip():
    fwd = hot.GaussianForward(SCH)
    x0, eps = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    for t in (1, 500, 1000):
        torch.testing.assert_close(fwd.noise_from(x0, fwd.sample(x0, t, eps), t), eps, rtol=1e-4, atol=1e-4)
    per_example = fwd.sample(x0, torch.tensor([1, 500, 1000, 7]), eps)
    torch.testing.assert_close(per_example[1], fwd.sample(x0[1:2], 500, eps[1:2])[0])


def test_bad_options_fail_early():
    with pytest.raises(ValueError, match="valid: ddpm, ddim, analytic-ddpm, analytic-ddim"):
        hot.make_reverse("euler", SCH)
    with pytest.raises(ValueError, match="statistics"):
        hot.make_reverse("analytic-ddim", SCH)
    with pytest.raises(ValueError, match="eta"):
        hot.make_reverse("ddim", SCH, eta=1.5)
    with pytest.raises(ValueError, match="eta applies"):
        hot.make_reverse("ddpm", SCH, eta=0.3)
    with pytest.raises(ValueError, match="increasing"):
        list(core.sample(POST, hot.make_reverse("ddim", SCH), torch.zeros(1, 2), [5, 3], make_generator(0, "cpu")))


def test_analytic_sigma_bar_formula():
    """σ̄_t² = (β̄_t / ᾱ_t)² (1 - E‖ε‖²/d), away from the clips."""
    stats = {"eps_sq": torch.full((1001,), 0.75, dtype=torch.float64), "x0_var": torch.tensor(1e6)}
    rev = hot.make_reverse("analytic-ddim", SCH, stats=stats)
    for t in (20, 300):
        a, b = SCH.abar[t].item(), SCH.bbar[t].item()
        assert rev.sigma_bar(t, t - 10) == pytest.approx((b / a) * 0.5, rel=1e-9)


def test_analytic_sigma_bar_is_clipped_and_zero_at_the_end():
    stats = {"eps_sq": torch.full((1001,), 1.5, dtype=torch.float64), "x0_var": torch.tensor(2.0)}
    rev = hot.make_reverse("analytic-ddpm", SCH, stats=stats)
    assert rev.sigma_bar(500, 400) == 0.0  # E‖ε‖²/d > 1 → bracket clipped at 0
    stats["eps_sq"][:] = 0.0
    rev = hot.make_reverse("analytic-ddpm", SCH, stats=stats)
    assert rev.sigma_bar(1000, 900) == pytest.approx(2.0**0.5)  # capped by Var[x_0]
    assert rev.sigma_bar(10, 0) == 0.0
