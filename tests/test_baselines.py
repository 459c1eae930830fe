"""The reference (baseline) samplers and what the pipelines hand them: diffusers' DDPM / DDIM / DPM-Solver++
loops over a hot ε-model checked step for step against udm's own reverse rule with the same noise, their
displayed x̂_0, and the exact text posterior's variant for each text sampler."""

import math
from collections import Counter
from dataclasses import dataclass, replace

import pytest
import torch

from udm import core, discrete, hot, oracle, schedule, text
from udm import text_pipeline as tp
from udm.data import Mixture
from udm.device import make_generator
from udm.reference import diffusers_scheduler, diffusers_steps

SCH = schedule.linear()  # T = 1000
MIX = Mixture(
    weights=torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64),
    means=torch.tensor([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.5]], dtype=torch.float64),
    covs=torch.tensor(
        [[[0.3, 0.1], [0.1, 0.05]], [[0.05, 0.0], [0.0, 0.4]], [[0.2, -0.08], [-0.08, 0.1]]], dtype=torch.float64
    ),
)


@dataclass(frozen=True)
class _HotModel:
    """What the reference loops read of a hot model: the schedule and `posterior.eps(x, t)`."""

    schedule: schedule.Schedule
    posterior: hot.EpsPosterior


MODEL = _HotModel(SCH, hot.EpsPosterior(oracle.MixtureEps(MIX, SCH), SCH))
X_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))


def _theirs(name, steps, seed, eta=0.0):
    return list(diffusers_steps(MODEL, name, X_T, steps, make_generator(seed, "cpu"), eta))


def _ours(reverse, taus, seed):
    return list(core.sample(MODEL.posterior, reverse, X_T, taus, make_generator(seed, "cpu")))


def _grid(name, steps):
    """udm's timesteps for a diffusers scheduler's grid: its td + 1."""
    return sorted(int(td) + 1 for td in diffusers_scheduler(name, SCH, steps).timesteps)


def _assert_same_run(theirs, ours, atol=1e-4):
    assert [(r.t, r.s) for r in theirs] == [(r.t, r.s) for r in ours]
    for a, b in zip(theirs, ours):
        torch.testing.assert_close(a.x_s, b.x_s, atol=atol, rtol=0, msg=lambda m: f"step {a.t} → {a.s}: {m}")


# ---------------------------------------------------------------- 8. DDIM's η reaches the scheduler
@pytest.mark.parametrize("eta", [1.0, 0.5])
def test_diffusers_ddim_with_eta_is_udm_ddim_with_eta_for_the_same_noise(eta):
    """diffusers' DDIM step draws its noise from the generator as udm's does (torch.randn on the CPU), so
    with η > 0 the two runs agree step for step; a second seed gives another run, and η = 0 a third."""
    taus = _grid("diffusers-ddim", 10)
    assert taus == list(range(100, 1001, 100))
    theirs = _theirs("diffusers-ddim", 10, seed=1, eta=eta)
    _assert_same_run(theirs, _ours(hot.HotReverse(SCH, eta=eta), taus, seed=1))
    other = _theirs("diffusers-ddim", 10, seed=2, eta=eta)
    deterministic = _theirs("diffusers-ddim", 10, seed=1, eta=0.0)
    _assert_same_run(deterministic, _ours(hot.HotReverse(SCH, eta=0.0), taus, seed=1))
    for run in (other, deterministic):
        assert (run[-1].x_s - theirs[-1].x_s).abs().max() > 0.1


def test_diffusers_ddim_eta_zero_ignores_the_generator():
    a, b = _theirs("diffusers-ddim", 10, seed=1), _theirs("diffusers-ddim", 10, seed=2)
    assert torch.equal(a[-1].x_s, b[-1].x_s)


# ---------------------------------------------------------------- 9. DDPM's variance is udm's σ_t² (fixed_small)
@pytest.mark.parametrize("steps", [10, 7])
def test_diffusers_ddpm_is_udm_ddpm_step_for_step(steps):
    """DDPM (η = 1): σ_t² = β̄_s² β_{t|s}² / β̄_t², diffusers' "fixed_small" variance; its noise is drawn
    with the generator as udm's, so the whole run agrees (K = 7 does not divide T: a respaced grid)."""
    taus = _grid("diffusers-ddpm", steps)
    theirs = _theirs("diffusers-ddpm", steps, seed=3)
    _assert_same_run(theirs, _ours(hot.HotReverse(SCH, eta=1.0), taus, seed=3))


def test_diffusers_ddpm_single_steps_are_udm_steps_with_the_same_noise():
    """One step at a time from the same x_t and ε: diffusers' x_s is udm's ᾱ_s x̂_0 + √(β̄_s² − σ_t²) ε +
    σ_t z with σ_t = η β̄_s β_{t|s} / β̄_t at η = 1 and z the generator's next normal."""
    sched = diffusers_scheduler("diffusers-ddpm", SCH, 10)
    rev = hot.HotReverse(SCH, eta=1.0)
    for t, s in ((1000, 900), (600, 500), (200, 100), (100, 0)):
        x = X_T * float(SCH.bbar[t]) + 0.3
        eps = MODEL.posterior.eps(x, t)
        out = sched.step(eps, t - 1, x, generator=make_generator(4, "cpu"))
        x0_hat = rev.predict_x0(MODEL.posterior, x, t, s, make_generator(4, "cpu"))
        torch.testing.assert_close(out.pred_original_sample, x0_hat, atol=1e-4, rtol=1e-5)
        mine = rev.step(x, x0_hat, t, s, make_generator(4, "cpu"))
        torch.testing.assert_close(out.prev_sample, mine, atol=1e-5, rtol=0, msg=lambda m: f"{t} → {s}: {m}")
        if s > 0:  # the noise really is there, at udm's scale
            z = torch.randn(x.shape, generator=make_generator(4, "cpu"))
            a_t, b_t, a_s, b_s = SCH.coefficients(t, s)
            sigma = rev.sigma(t, s)
            mean = a_s * x0_hat + (b_s**2 - sigma**2) ** 0.5 * (x - a_t * x0_hat) / b_t
            torch.testing.assert_close(out.prev_sample - mean, sigma * z, atol=1e-5, rtol=0)
            assert sigma > 0.01


# ---------------------------------------------------------------- 10. the displayed x̂_0
@pytest.mark.parametrize("name", ["diffusers-ddpm", "diffusers-ddim", "diffusers-dpm-solver++"])
def test_diffusers_records_show_the_posterior_mean_at_their_t(name):
    """Every record: t = td + 1 over the scheduler's timesteps, x̂_0 = (x_t − β̄_t ε_θ(x_t, t)) / ᾱ_t."""
    records = _theirs(name, 7, seed=5, eta=0.0)
    tds = [int(td) for td in diffusers_scheduler(name, SCH, 7).timesteps]
    assert [r.t for r in records] == [td + 1 for td in tds]
    for a, b in zip(records, records[1:]):
        assert b.x_t is a.x_s
    for r in records:
        a, b = float(SCH.abar[r.t]), float(SCH.bbar[r.t])
        eps = MODEL.posterior.eps(r.x_t, r.t).double()
        want = ((r.x_t.double() - b * eps) / a).float()
        torch.testing.assert_close(r.x0_hat, want, atol=1e-4, rtol=1e-5, msg=lambda m: f"t = {r.t}: {m}")


@pytest.mark.parametrize("name", ["diffusers-ddpm", "diffusers-ddim"])
def test_diffusers_records_x0_hat_is_the_scheduler_s_own_prediction(name):
    records = _theirs(name, 10, seed=6, eta=0.0)
    sched = diffusers_scheduler(name, SCH, 10)
    for r in records:
        eps = MODEL.posterior.eps(r.x_t, r.t)
        kw = {"eta": 0.0} if name == "diffusers-ddim" else {}
        own = sched.step(eps, r.t - 1, r.x_t, generator=torch.Generator().manual_seed(0), **kw)
        torch.testing.assert_close(r.x0_hat, own.pred_original_sample, atol=1e-4, rtol=1e-5)


# ---------------------------------------------------------------- 11. the text pipeline's exact posterior variant
VARIANTS = {
    ("mask", "naive"): "mask",
    ("mask", "improved"): "mask",
    ("edit", "naive"): "edit-v1",
    ("edit", "improved"): "edit-v2",
}


@pytest.mark.parametrize("process,sampler", list(VARIANTS))
def test_text_pipeline_exact_posterior_has_the_sampler_s_variant(process, sampler):
    req = tp.TextRequest(process=process, data="en5", sampler=sampler, model="exact")
    post = tp.posterior(req, "cpu")
    assert isinstance(post, discrete.ExactPosterior)
    assert post.process == VARIANTS[process, sampler]


def _edit_posterior(sampler):
    return tp.posterior(tp.TextRequest(process="edit", data="en5", sampler=sampler, model="exact"), "cpu")


def _ways(h: torch.Tensor, n: int, t: int) -> torch.Tensor:
    """v1's weight of a word at Hamming distance h from x_t: C(l − h, t − h) for h ≤ t."""
    return torch.tensor([math.comb(n - k, t - k) if k <= t else 0 for k in h.tolist()], dtype=torch.float64)


def _normalised(w: torch.Tensor) -> torch.Tensor:
    w = w.double()
    return w / w.sum()


# a tiny list put in place of the training split (the variant is the pipeline's): 5-letter "words" over a–e
TINY = ["abcde", "abcdd", "abced", "abdde", "bbcde", "aacee", "edcba", "abbbb"]
TINY_PRIOR = torch.tensor([0.3, 0.1, 0.15, 0.05, 0.1, 0.1, 0.1, 0.1])


def _tiny(post):
    v = text.vocab("en5")
    return replace(post, words=v.encode(TINY), prior=TINY_PRIOR), v.encode(["abcde"])


def test_text_pipeline_naive_edit_posterior_has_v1_weights():
    """Naive edit reads q(x_0 | x_t) of v1 (any replacement token): weight C(l − h, t − h) at distance h ≤ t,
    on the training split itself (one x_t, every word)."""
    post = _edit_posterior("naive")
    words, n = post.words, post.words.shape[1]
    for w, t in ((0, 2), (2, 1)):
        ham = (words != words[w]).sum(1)
        got = post(words[w : w + 1], t).weights[0]
        torch.testing.assert_close(_normalised(got), _normalised(post.prior * _ways(ham, n, t)), atol=1e-7, rtol=1e-4)
        assert got[w] > 0  # x_t itself can be x_0 under v1 (the replacements drew the old tokens)


def test_text_pipeline_naive_edit_draws_obey_v1_weights():
    """The naive sampler's x̂_0 draws from the pipeline's posterior (on a tiny list): their distance from
    x_t follows v1's weights, x_t itself included (v2 would never return it)."""
    post, x_t = _tiny(_edit_posterior("naive"))
    words, n, t, reps = post.words, post.words.shape[1], 2, 6000
    ham = (words != x_t).sum(1)
    weights = post.prior.double() * _ways(ham, n, t)
    want = torch.stack([weights[ham == h].sum() for h in range(t + 1)]) / weights.sum()
    assert want.min() > 0.05  # every distance 0..t is likely: [0.71, 0.24, 0.06]
    x0_hat = discrete.EditReverse("naive", text.vocab("en5").V).predict_x0(
        post, x_t.expand(reps, -1), t, t - 1, torch.Generator().manual_seed(7)
    )
    got = (x0_hat != x_t).sum(1)
    assert got.max().item() <= t
    torch.testing.assert_close(torch.bincount(got, minlength=t + 1).double() / reps, want, atol=0.025, rtol=0)


def test_text_pipeline_improved_edit_posterior_and_draws_are_at_distance_exactly_t():
    post = _edit_posterior("improved")
    words = post.words
    for w, t in ((0, 1), (2, 2)):
        ham = (words != words[w]).sum(1)
        got = post(words[w : w + 1], t).weights[0]
        torch.testing.assert_close(_normalised(got), _normalised(post.prior * (ham == t)), atol=1e-7, rtol=1e-4)
    tiny, x_t = _tiny(post)
    for t in (1, 2):
        x0_hat = discrete.EditReverse("improved", text.vocab("en5").V).predict_x0(
            tiny, x_t.expand(2000, -1), t, t - 1, torch.Generator().manual_seed(8)
        )
        assert (x0_hat != x_t).sum(1).eq(t).all()
        assert len(Counter(map(tuple, x0_hat.tolist()))) > 1
