"""Cold diffusion: the degradations, and the samplers against a perfect restorer."""

import math

import pytest
import torch

from udm import cold, core, data

T = 20


@pytest.fixture(scope="module")
def digits():
    return data.training_set("mnist28")[:64]


@pytest.mark.parametrize("name", cold.DEGRADATIONS)
def test_degradation_identity_shapes_and_batching(name, digits):
    d = cold.Degradation(name, T)
    assert torch.equal(d(digits, 0), digits)
    for t in (1, T // 2, T):
        y = d(digits, t)
        assert y.shape == digits.shape and y.dtype == digits.dtype
        one = torch.cat([d(digits[i : i + 1], t) for i in range(4)])
        torch.testing.assert_close(one, y[:4], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", cold.DEGRADATIONS)
def test_degradation_grows_with_t_and_ends_at_its_final_image(name, digits):
    d = cold.Degradation(name, T)
    dist = torch.stack([(d(digits, t) - digits).abs().flatten(1).mean(1) for t in range(T + 1)])  # (T+1, B)
    mean = dist.mean(1)
    assert (mean[1:] > mean[:-1] - 1e-6).all(), mean
    assert mean[T] > 5 * mean[1]
    assert (dist[T] >= dist[1] - 1e-6).all()  # every digit is further from itself at T than at 1
    end = d.expand(d.final(digits), tuple(digits.shape[1:]))
    torch.testing.assert_close(d(digits, T), end, atol=1e-3, rtol=0)


def test_blur_is_a_gaussian_blur_that_keeps_the_mean(digits):
    d = cold.Degradation("blur", T)
    y = d(digits, 5)
    torch.testing.assert_close(y.mean((-2, -1)), digits.mean((-2, -1)), atol=1e-5, rtol=0)
    delta = torch.zeros(1, 1, 28, 28)
    delta[..., 14, 14] = 1.0
    lo, hi = cold.BLUR_RANGE
    t = 6
    std = lo * (hi / lo) ** ((t - 1) / (T - 1))
    assert 1.5 < std < 4
    k = d(delta, t)[0, 0, 14]  # a row through the centre: a Gaussian of that std, far from the borders
    for j in range(1, 5):
        assert float(k[14 + j] / k[14]) == pytest.approx(math.exp(-(j**2) / (2 * std**2)), rel=0.02)


def test_mask_hides_a_growing_centre_disc(digits):
    d = cold.Degradation("mask", T)
    hidden = [(d(torch.full((1, 1, 28, 28), -1.0), t) == cold.MASK_VALUE).sum().item() for t in range(T + 1)]
    assert hidden[0] == 0 and hidden[T] == 28 * 28
    assert all(b > a for a, b in zip(hidden, hidden[1:]))
    small = d(torch.full((1, 1, 28, 28), -1.0), 2)[0, 0] == cold.MASK_VALUE
    assert small[13:15, 13:15].all() and not small[0, 0]


class PerfectRestorer:
    """G_t returning the true x_0: the samplers must then land exactly on x_0."""

    def __init__(self, x0):
        self.x0 = x0

    def __call__(self, x_t, t):
        return self.x0


@pytest.mark.parametrize("name", cold.DEGRADATIONS)
@pytest.mark.parametrize("sampler", cold.SAMPLERS)
@pytest.mark.parametrize("sigma", [0.0, 0.2])
def test_perfect_restorer_returns_x0_from_any_t(name, sampler, sigma, digits):
    x0 = digits[:8]
    fwd = cold.ColdForward(cold.Degradation(name, T), sigma)
    reverse = cold.make_reverse(sampler, fwd)
    g = torch.Generator().manual_seed(0)
    for t in (1, T // 2, T):
        x_t = fwd.sample(x0, t, torch.randn(x0.shape, generator=g))
        steps = list(cold.plan(PerfectRestorer(x0), reverse, x_t, t, g).steps())
        assert [s.t for s in steps] == list(range(t, 0, -1))
        torch.testing.assert_close(steps[-1].x_s, x0, atol=1e-5, rtol=0)
        if sigma == 0:  # every intermediate state is exactly F_s(x_0) too
            for s in steps[:-1]:
                torch.testing.assert_close(s.x_s, fwd.degradation(x0, s.s), atol=1e-5, rtol=0)


class ShiftedRestorer:
    """An imperfect restorer (x_0 + a fixed error): the improved rule cancels the error in F_t on the way
    down, the naive rule does not, which is the post's point."""

    def __init__(self, x0, err):
        self.x0, self.err = x0, err

    def __call__(self, x_t, t):
        return self.x0 + self.err


def test_improved_rule_carries_the_residual_down_to_x1_and_returns_x0_hat(digits):
    """σ = 0, linear F: the improved states telescope, x_1 = x_T + F_1(x̂) − F_T(x̂) = F_1(x_0) + F_1(err) −
    F_T(err), where the naive x_1 = F_1(x̂) forgets x_T; the last step returns x̂_0 for both."""
    x0 = digits[:8]
    err = 0.3 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    fwd = cold.ColdForward(cold.Degradation("fade", T), 0.0)
    F = fwd.degradation
    x_T = fwd.sample(x0, T, torch.zeros_like(x0))
    g = torch.Generator().manual_seed(0)
    improved = list(cold.plan(ShiftedRestorer(x0, err), cold.make_reverse("improved", fwd), x_T, T, g).steps())
    naive = list(cold.plan(ShiftedRestorer(x0, err), cold.make_reverse("naive", fwd), x_T, T, g).steps())
    torch.testing.assert_close(improved[-2].x_s, F(x0, 1) + F(err, 1) - F(err, T), atol=1e-4, rtol=0)
    torch.testing.assert_close(naive[-2].x_s, F(x0 + err, 1), atol=1e-5, rtol=0)
    for run in (improved, naive):
        torch.testing.assert_close(run[-1].x_s, run[-1].x0_hat)  # s = 0: x_0 = x̂_0


@pytest.mark.parametrize("name", ["blur", "fade", "pixelate"])
def test_sigma_zero_is_the_limit_of_small_sigma(name, digits):
    """The improved rule at σ = 0 is its σ → 0⁺ limit at every step, the last one included."""
    x0 = digits[:4]

    def restorer(x_t, t):  # depends on its input, as a trained G_t does
        return torch.tanh(2 * x_t)

    finals = []
    for sigma in (0.0, 1e-7):
        fwd = cold.ColdForward(cold.Degradation(name, T), sigma)
        x_T = fwd.sample(x0, T, torch.zeros_like(x0))
        steps = list(
            cold.plan(restorer, cold.make_reverse("improved", fwd), x_T, T, torch.Generator().manual_seed(0)).steps()
        )
        finals.append(torch.stack([s.x_s for s in steps]))
    torch.testing.assert_close(finals[0], finals[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["blur", "mask"])
def test_sigma_noise_is_carried_by_improved_and_fresh_for_naive(name, digits):
    """σ > 0 with a perfect restorer: improved keeps the start's noise at every state, x_s − F_s(x_0) =
    x_t − F_t(x_0); naive draws fresh noise of spread σ at every step."""
    x0, sigma = digits[:16], 0.2
    fwd = cold.ColdForward(cold.Degradation(name, T), sigma)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3))
    x_T = fwd.sample(x0, T, noise)
    F = fwd.degradation
    g = torch.Generator().manual_seed(0)
    for step in cold.plan(PerfectRestorer(x0), cold.make_reverse("improved", fwd), x_T, T, g).steps():
        if step.s > 0:
            torch.testing.assert_close(step.x_s - F(x0, step.s), sigma * noise, atol=1e-5, rtol=0)
    residuals = [
        step.x_s - F(x0, step.s)
        for step in cold.plan(PerfectRestorer(x0), cold.make_reverse("naive", fwd), x_T, T, g).steps()
        if step.s > 0
    ]
    spread = torch.stack(residuals).std().item()
    assert abs(spread - sigma) < 0.01 and not torch.allclose(residuals[0], residuals[1])


@pytest.mark.parametrize("name", ["blur", "fade", "mask"])
def test_final_prior_draws_have_the_asked_noise_spread(name, digits):
    """x_T = F_T-image of a mixture draw + noise·ε: the noise around the F_T image has spread `noise`."""
    prior = cold.FinalPrior.fit(cold.Degradation(name, T), digits)
    g = torch.Generator().manual_seed(0)
    clean = prior.sample(64, tuple(digits.shape[1:]), 0.0, torch.Generator().manual_seed(0))
    noisy = prior.sample(64, tuple(digits.shape[1:]), 0.3, g)
    torch.testing.assert_close((noisy - clean).std(), torch.tensor(0.3), atol=0.01, rtol=0)
    assert abs((noisy - clean).mean().item()) < 0.01


def test_sigma_zero_generation_is_deterministic_and_noise_brings_diversity(digits):
    """One x_T, σ = 0 → identical outputs whatever the generator (the collapse is real); σ > 0 → they differ."""
    x0 = digits[:1].expand(4, -1, -1, -1)

    def restorer(x_t, t):  # depends on its input, as a trained G_t does
        return torch.tanh(2 * x_t)

    for sampler in cold.SAMPLERS:
        for sigma, same in ((0.0, True), (0.2, sampler == "improved")):
            fwd = cold.ColdForward(cold.Degradation("blur", T), sigma)
            x_T = fwd.degradation(x0, T)
            reverse = cold.make_reverse(sampler, fwd)
            outs = [
                core.last(cold.plan(restorer, reverse, x_T, T, torch.Generator().manual_seed(s)).steps()).x_s
                for s in (0, 1)
            ]
            assert torch.equal(outs[0], outs[1]) == same, (sampler, sigma)
            if sigma == 0:  # identical starts in one batch: identical results
                assert torch.equal(outs[0][0], outs[0][3])
        # improved at σ > 0 reuses the noise: its diversity comes from x_T's noise, which the prior draws
        fwd = cold.ColdForward(cold.Degradation("blur", T), 0.2)
        prior = cold.FinalPrior(fwd.degradation, torch.ones(1), torch.full((1, 1), -0.7), torch.zeros(1, 1))
        starts = prior.sample(4, (1, 28, 28), 0.2, torch.Generator().manual_seed(0))
        out = core.last(
            cold.plan(restorer, cold.make_reverse("improved", fwd), starts, T, torch.Generator()).steps()
        ).x_s
        assert (out[0] - out[1]).abs().mean() > 1e-3


def test_fresh_noise_share_interpolates_naive_and_improved(digits):
    x0 = digits[:4]
    fwd = cold.ColdForward(cold.Degradation("fade", T), 0.0)
    x_t, x_hat = fwd.degradation(x0, 10) + 0.1, x0
    g = torch.Generator()
    naive = cold.make_reverse("naive", fwd).step(x_t, x_hat, 10, 9, g)
    improved = cold.make_reverse("improved", fwd).step(x_t, x_hat, 10, 9, g)
    full = cold.make_reverse("improved", fwd, fresh=1.0).step(x_t, x_hat, 10, 9, g)
    torch.testing.assert_close(naive, fwd.degradation(x_hat, 9))
    torch.testing.assert_close(improved, x_t + fwd.degradation(x_hat, 9) - fwd.degradation(x_hat, 10))
    torch.testing.assert_close(full, naive)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown degradation"):
        cold.Degradation("smudge")
    with pytest.raises(ValueError, match="between 0 and T"):
        cold.Degradation("blur", T)(torch.zeros(1, 1, 8, 8), T + 1)
    with pytest.raises(ValueError, match="naive"):
        cold.make_reverse("naive", cold.ColdForward(cold.Degradation("blur")), fresh=0.5)
    with pytest.raises(ValueError, match="unknown sampler"):
        cold.make_reverse("clever", cold.ColdForward(cold.Degradation("blur")))


def test_final_prior_draws_constant_images_at_training_grey_levels(digits):
    d = cold.Degradation("blur", T)
    p = cold.FinalPrior.fit(d, data.training_set("mnist28")[:2000])
    x = p.sample(500, (1, 28, 28), 0.0, torch.Generator().manual_seed(0))
    assert x.shape == (500, 1, 28, 28)
    assert torch.equal(x.amax((-2, -1)), x.amin((-2, -1)))  # constant images
    means = data.training_set("mnist28")[:2000].mean((-2, -1))
    assert x[:, 0, 0, 0].mean() == pytest.approx(means.mean().item(), abs=0.02)
    assert x[:, 0, 0, 0].std() == pytest.approx(means.std().item(), rel=0.2)
    masked = cold.FinalPrior.fit(cold.Degradation("mask", T), digits).sample(3, (1, 28, 28), 0.0, torch.Generator())
    assert (masked == cold.MASK_VALUE).all()
