"""Equivalence with diffusers: schedules, and single DDPM / DDIM steps for the same ε and noise."""

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from udm import hot, schedule
from udm.device import make_generator

BETAS = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


def _eps_model(eps):
    return lambda x, t: eps


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_schedule_matches_diffusers(name):
    ours = schedule.make(name, 1000)
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule=BETAS[name]).alphas_cumprod.double()
    torch.testing.assert_close(ours.abar[1:] ** 2, ref, rtol=1e-5, atol=1e-7)
    assert ours.abar[0] == 1 and ours.bbar[0] == 0


@pytest.mark.parametrize("K", [1, 2, 5, 10, 27, 50, 333, 999, 1000])
def test_respacing_is_diffusers_linspace_plus_one(K):
    ref = DDIMScheduler(num_train_timesteps=1000, timestep_spacing="linspace")
    ref.set_timesteps(K)
    expected = sorted(int(t) + 1 for t in ref.timesteps) if K > 1 else [1000]  # K = 1: the jump T → 0
    assert schedule.respace(1000, K) == expected


def _step_pairs(sched, K):
    """(diffusers t, diffusers prev) → (our t, our s): our index is diffusers' + 1, and 0 is data."""
    sched.set_timesteps(K)
    ts = sched.timesteps.tolist()
    picks = [ts[0], ts[len(ts) // 2], ts[-2], ts[-1]]
    return [(td, td - 1000 // K) for td in picks]


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("K", [1000, 50, 7])
def test_ddpm_step_matches_diffusers(name, K):
    ref = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule=BETAS[name], clip_sample=False, variance_type="fixed_small"
    )
    sch = schedule.make(name, 1000)
    rev = hot.make_reverse("ddpm", sch)
    for td, pd in _step_pairs(ref, K):
        torch.manual_seed(td)
        x, eps = torch.randn(16, 1, 4, 4), torch.randn(16, 1, 4, 4)
        out = ref.step(eps, td, x, generator=torch.Generator().manual_seed(1))
        t, s = td + 1, max(pd + 1, 0)
        post = hot.EpsPosterior(_eps_model(eps), sch)
        x0 = rev.predict_x0(post, x, t, s, make_generator(1, "cpu"))
        x_s = rev.step(x, x0, t, s, make_generator(1, "cpu"))
        torch.testing.assert_close(x0, out.pred_original_sample, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(x_s, out.prev_sample, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("K", [1000, 50, 10])
def test_ddim_step_matches_diffusers(name, eta, K):
    ref = DDIMScheduler(num_train_timesteps=1000, beta_schedule=BETAS[name], clip_sample=False, set_alpha_to_one=True)
    sch = schedule.make(name, 1000)
    rev = hot.make_reverse("ddim", sch, eta=eta)
    for td, pd in _step_pairs(ref, K):
        torch.manual_seed(td)
        x, eps = torch.randn(16, 2), torch.randn(16, 2)
        out = ref.step(eps, td, x, eta=eta, generator=torch.Generator().manual_seed(1))
        t, s = td + 1, max(pd + 1, 0)
        x0 = rev.predict_x0(hot.EpsPosterior(_eps_model(eps), sch), x, t, s, make_generator(1, "cpu"))
        x_s = rev.step(x, x0, t, s, make_generator(1, "cpu"))
        torch.testing.assert_close(x0, out.pred_original_sample, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(x_s, out.prev_sample, rtol=1e-4, atol=1e-5)


def test_ddim_differs_from_ddpm_when_it_should():
    """A sanity check that the comparison above has teeth: DDIM's step is not DDPM's."""
    sch = schedule.linear()
    x, eps = torch.randn(8, 2), torch.randn(8, 2)
    post = hot.EpsPosterior(_eps_model(eps), sch)
    outs = []
    for name in ("ddpm", "ddim"):
        rev = hot.make_reverse(name, sch)
        x0 = rev.predict_x0(post, x, 500, 480, make_generator(0, "cpu"))
        outs.append(rev.step(x, x0, 500, 480, make_generator(0, "cpu")))
    assert (outs[0] - outs[1]).abs().max() > 1e-2


NEW = {  # the multistep schedulers udm runs, as a user would build them from diffusers alone
    "diffusers-dpm-solver++-3m": ("DPMSolverMultistepScheduler", dict(algorithm_type="dpmsolver++", solver_order=3)),
    "diffusers-dpm-solver++-sde": ("DPMSolverMultistepScheduler", dict(algorithm_type="sde-dpmsolver++")),
    "diffusers-unipc": ("UniPCMultistepScheduler", dict(solver_order=3, solver_type="bh2")),
    "diffusers-deis": ("DEISMultistepScheduler", dict(solver_order=3)),
}


@pytest.mark.parametrize("name", list(NEW))
@pytest.mark.parametrize("K", [4, 10])
def test_multistep_schedulers_as_udm_records_equal_diffusers_own_loop(name, K):
    """Same network (ε in diffusers' time td is udm's ε at t = td + 1), same x_T, same noise: udm's step
    records end where diffusers' own loop over the scheduler ends, and chain x_s → next x_t."""
    from types import SimpleNamespace

    import diffusers

    from udm import reference

    sch = schedule.linear()
    net = lambda x, t: torch.tanh(x) * 0.5 + 0.2 * torch.cos(t.float() / 300)[:, None]  # noqa: E731
    model = SimpleNamespace(schedule=sch, posterior=hot.EpsPosterior(net, sch))
    x_T = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    records = list(reference.diffusers_steps(model, name, x_T, K, torch.Generator().manual_seed(3)))
    cls, kw = NEW[name]
    theirs = getattr(diffusers, cls)(
        num_train_timesteps=1000, beta_schedule="linear", timestep_spacing="trailing", **kw
    )
    theirs.set_timesteps(K)
    x, g = x_T, torch.Generator().manual_seed(3)
    kw = {"generator": g} if name.endswith("sde") else {}
    for td in theirs.timesteps:
        x = theirs.step(net(x, torch.full((32,), int(td) + 1)), td, x, **kw).prev_sample
    assert len(records) == K and records[0].t == 1000 and records[-1].s == 0
    assert all(b.x_t is a.x_s for a, b in zip(records, records[1:]))
    torch.testing.assert_close(records[-1].x_s, x, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("K", [1, 4, 10])
def test_heun_as_udm_records_equals_diffusers_own_loop(K):
    """Heun walks x / ᾱ_t and calls the network on x / sqrt(σ² + 1) (its `scale_model_input`): started at
    the same point (udm's x_T · sqrt(σ_T² + 1)), udm's records end where diffusers' own loop ends, one
    record per full step, 2K − 1 network calls."""
    from types import SimpleNamespace

    import diffusers

    from udm import reference

    sch = schedule.linear()
    calls = []

    def net(x, t):
        calls.append(int(t[0]))
        return torch.tanh(x) * 0.5 + 0.2 * torch.cos(t.float() / 300)[:, None]

    model = SimpleNamespace(schedule=sch, posterior=hot.EpsPosterior(net, sch))
    x_T = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    records = list(reference.diffusers_steps(model, "diffusers-heun", x_T, K, torch.Generator().manual_seed(3)))
    assert len(calls) == reference.evaluations("diffusers-heun", K) == 2 * K - 1
    theirs = diffusers.HeunDiscreteScheduler(
        num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02, timestep_spacing="trailing"
    )
    theirs.set_timesteps(K)
    x = x_T * (theirs.sigmas[0] ** 2 + 1) ** 0.5
    for td in theirs.timesteps:
        x = theirs.step(net(theirs.scale_model_input(x, td), torch.full((32,), int(td) + 1)), td, x).prev_sample
    assert len(records) == K and records[0].t == 1000 and records[-1].s == 0
    assert [r.s for r in records[:-1]] == [r.t for r in records[1:]]
    assert all(torch.equal(b.x_t, a.x_s) for a, b in zip(records, records[1:]))
    torch.testing.assert_close(records[-1].x_s, x, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(records[0].x_t, x_T)  # records speak udm's scale


@pytest.mark.parametrize("spacing", schedule.SPACINGS)
@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("K", [1, 2, 5, 10, 50, 999, 1000])
def test_every_spacing_gives_k_distinct_steps_ending_at_T(spacing, name, K):
    ts = schedule.spaced(schedule.make(name), K, spacing)
    assert len(ts) == K and ts[-1] == 1000 and ts[0] >= 1 and all(a < b for a, b in zip(ts, ts[1:]))
    if K > 2:
        assert ts[0] == 1  # the last step is 1 → 0


def test_spacings_put_their_steps_where_they_say():
    lin = schedule.linear()
    assert schedule.spaced(lin, 10, "even") == schedule.respace(1000, 10)
    assert schedule.spaced(lin, 10, "quadratic") == [1, 13, 50, 112, 198, 309, 445, 605, 790, 1000]
    lam = (2 * (lin.abar.log() - lin.bbar.log()))[1:]
    gaps = lam[[t - 1 for t in schedule.spaced(lin, 10, "log-snr")]].diff()
    assert gaps.std() / gaps.abs().mean() < 0.05  # even steps in log-SNR, up to rounding to the grid
    with pytest.raises(ValueError, match="valid: even, quadratic, log-snr"):
        schedule.spaced(lin, 10, "cubic")


def test_a_hot_run_takes_the_spacing_it_is_asked_for():
    from udm import process
    from udm.hot_pipeline import HotRequest

    p = process.get("hot")
    for spacing in schedule.SPACINGS:
        ts = [r.t for r in p.steps(HotRequest(data="moons", sampler="ddim", steps=6, n=4, spacing=spacing))]
        assert ts == schedule.spaced(schedule.linear(), 6, spacing)[::-1]
    with pytest.raises(ValueError, match="spacing"):
        HotRequest(data="moons", spacing="cubic")
    heun = p.choice("moons", "diffusers-heun")
    assert p.evaluations(heun, "moons", 5) == 9 and p.total_steps(heun, "moons", 5) == 5
