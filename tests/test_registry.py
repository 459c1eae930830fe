"""The registry of processes: a process defined entirely here (2-D points shrunk towards the origin plus
Gaussian noise, with its closed-form posterior) runs through the library loop, the CLI's `sample` and
Compare's engine with no edit under udm/; and a contract every registered process keeps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from udm import cold, compare, core, discrete, hot, process, schedule
from udm.cli import main
from udm.device import randn
from udm.process import Choice, Process

T = 20
MU, S = torch.tensor([1.5, -0.5]), 0.4  # the data: N(MU, S² I)


def gamma(t: int) -> float:
    """How much of x_0 is left at t: shrinks from 1 to 0.05."""
    return 1.0 - 0.95 * t / T


def sigma(t: int) -> float:
    return 0.05 + 0.95 * t / T if t > 0 else 0.0


@dataclass(frozen=True)
class ShrinkForward:
    """x_t = γ_t x_0 + σ_t ε: towards the origin, with noise (core.Invertible)."""

    T: int = T

    def sample(self, x0, t, noise):
        return gamma(t) * x0 + sigma(t) * noise

    def draw(self, x0, t, generator):
        return self.sample(x0, t, randn(x0.shape, generator))

    def noise_from(self, x0, x_t, t):
        return (x_t - gamma(t) * x0) / sigma(t)


@dataclass(frozen=True)
class ShrinkPosterior:
    """The exact q(x_0 | x_t) = N(m, v I) for x_0 ~ N(MU, S² I): returns (B, 2, 2), mean and std."""

    def __call__(self, x_t, t):
        g, s = gamma(t), sigma(t)
        v = 1.0 / (1.0 / S**2 + g**2 / s**2)
        mean = v * (MU / S**2 + g * x_t / s**2)
        return torch.stack([mean, torch.full_like(mean, math.sqrt(v))], 1)


@dataclass(frozen=True)
class ShrinkReverse:
    """x̂_0 ~ q(x_0|x_t); naive: x_s = F_s(x̂_0, fresh ε); improved: x_s = F_s(x̂_0, ε̂), ε̂ = F_t⁻¹(x̂_0, x_t)."""

    sampler: str

    def predict_x0(self, posterior, x_t, t, s, generator):
        answer = posterior(x_t, t)
        return answer[:, 0] + answer[:, 1] * randn(x_t.shape, generator)

    def step(self, x_t, x0_hat, t, s, generator):
        fwd = ShrinkForward()
        if self.sampler == "naive":
            return fwd.draw(x0_hat, s, generator) if s > 0 else x0_hat
        return fwd.sample(x0_hat, s, fwd.noise_from(x0_hat, x_t, t))


@dataclass(frozen=True)
class ShrinkRequest:
    data: str = "gauss2"
    sampler: str = "improved"
    steps: int = T
    n: int = 100
    seed: int = 0

    def __post_init__(self):
        process.check_choice(self.data, "dataset", ("gauss2",))
        process.check_choice(self.sampler, "sampler", ("naive", "improved"))
        process.check_steps(self.steps, T)
        process.check_range(self.n, "number of samples", 1, 5000)
        process.check_seed(self.seed)


class ShrinkProcess(Process):
    name = "shrink"
    title = "points shrunk towards the origin plus Gaussian noise (a test process)"
    Request = ShrinkRequest

    def datasets(self):
        return ("gauss2",)

    def kind(self, data_name):
        return "points"

    def max_samples(self, data_name):
        return 5000

    def choices(self, data_name):
        return (Choice("naive", steps=True), Choice("improved", steps=True))

    def plan(self, req, device=None):
        g = torch.Generator().manual_seed(req.seed)
        x_T = ShrinkForward().draw(MU.expand(req.n, 2), T, g)  # F_T(x_0) is nearly all noise
        taus = tuple(schedule.respace(T, req.steps))
        return core.Plan(ShrinkPosterior(), ShrinkReverse(req.sampler), x_T, taus, g)

    def decode(self, data_name, x):
        return x.float().cpu()

    def figures(self, data_name, final):
        return {"mean_error": float((final.mean(0) - MU).norm()), "std": float(final.std(0).mean())}


@pytest.fixture
def shrink():
    p = process.register(ShrinkProcess())
    yield p
    process.unregister("shrink")


def test_a_process_defined_outside_udm_runs_through_the_library_loop(shrink):
    """Both rules sample the data exactly (the posterior is exact): mean MU, spread S."""
    for sampler in ("naive", "improved"):
        final = core.last(shrink.steps(shrink.request(sampler=sampler, n=4000, seed=1))).x_s
        assert final.shape == (4000, 2)
        torch.testing.assert_close(final.mean(0), MU, atol=0.03, rtol=0)  # 4 standard errors
        torch.testing.assert_close(final.std(0), torch.full((2,), S), atol=0.02, rtol=0)
    assert "shrink" in process.names()


def test_a_process_defined_outside_udm_runs_through_the_cli(shrink, tmp_path):
    out = tmp_path / "s.npz"
    assert main(["sample", "--process", "shrink", "--steps", "5", "-n", "30", "--seed", "2", "--out", str(out)]) == 0
    z = np.load(out)
    assert z["samples"].shape == (30, 2) and z["x0_hat"].shape == (5, 30, 2) and z["x_t"].shape == (5, 30, 2)
    assert z["timesteps"].tolist() == [20, 15, 11, 6, 1]
    alone = core.last(shrink.steps(shrink.request(steps=5, n=30, seed=2))).x_s
    np.testing.assert_array_equal(z["samples"], alone.numpy())
    assert main(["sample", "--process", "shrink", "--eta", "0.5", "--out", str(out)]) == 2  # not its option


def test_a_process_defined_outside_udm_runs_through_compare(shrink):
    req = compare.Request("shrink", "gauss2", (compare.Entry("naive", 4), compare.Entry("improved", 4)), n=500, seed=3)
    naive, improved = compare.run(req, "cpu")
    assert naive.batched_with == 2 and improved.evaluations == 4 and len(improved.frames) == 4
    alone = core.last(shrink.steps(shrink.request(sampler="improved", steps=4, n=500, seed=3))).x_s
    # batched, the improved chunk draws its noise after the naive one's: the same law, other numbers
    assert improved.final.shape == alone.shape and set(improved.figures) == {"mean_error", "std"}
    assert improved.figures["mean_error"] < 0.1 and abs(improved.figures["std"] - S) < 0.05
    (one,) = compare.run(compare.Request("shrink", "gauss2", (compare.Entry("improved", 4),), n=500, seed=3), "cpu")
    torch.testing.assert_close(one.final, alone)  # a lone sampler runs exactly as alone
    with pytest.raises(ValueError, match="unknown sampler"):
        compare.Request("shrink", "gauss2", (compare.Entry("ddim", 4),))


# ---------------------------------------------------------------- every registered process keeps the contract
@pytest.mark.parametrize("name", ["hot", "cold", "mask", "edit", "encoding"])
def test_every_process_declares_what_the_rest_of_udm_asks(name):
    p = process.get(name)
    assert p.name == name and p.title and p.datasets()
    for data_name in p.datasets():
        choices = p.choices(data_name)
        labels = [c.label for c in choices]
        assert len(set(labels)) == len(labels) and all(p.choice(data_name, x) is not None for x in labels)
        assert p.kind(data_name) in ("images", "points", "words") and p.max_samples(data_name) >= 1
        own = [c for c in choices if not c.reference]
        req = p.compare_request(own[0], data_name, 2, 0, 3 if own[0].steps else None, None)
        assert req.data == data_name and req.n == 2 and req.sampler == own[0].sampler
        with pytest.raises(ValueError, match="seed"):
            p.request(data=data_name, seed=-1)
        with pytest.raises(ValueError, match="number of samples"):
            p.request(data=data_name, n=p.max_samples(data_name) + 1)
    with pytest.raises(ValueError, match="does not apply"):
        p.request(no_such_option=1)
    assert not any(c.reference for c in p.choices(p.datasets()[0])[: len(own)])  # its own rules come first


def _invertible():
    sch = schedule.linear(100)
    return [
        hot.GaussianForward(sch),
        cold.ColdForward(cold.Degradation("blur", 10), 0.2),
        cold.ColdForward(cold.Degradation("fade", 10), 0.5),
        ShrinkForward(),
    ]


@pytest.mark.parametrize("fwd", _invertible(), ids=lambda f: type(f).__name__)
def test_invertible_forwards_read_their_noise_back(fwd):
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 1, 8, 8, generator=g) * 2 - 1
    noise = torch.randn(x0.shape, generator=g)
    for t in (1, fwd.T // 2, fwd.T):
        torch.testing.assert_close(fwd.noise_from(x0, fwd.sample(x0, t, noise), t), noise, atol=1e-4, rtol=1e-4)
    assert fwd.draw(x0, 3, g).shape == x0.shape


@pytest.mark.parametrize(
    "fwd", [discrete.MaskForward(5, 7), discrete.EditForward(5, 7, True), discrete.EditForward(5, 7, False)]
)
def test_discrete_forwards_draw_at_an_int_or_per_example_t(fwd):
    """Mask and edit v2 change exactly t positions; edit v1 at most t (a replacement may repeat the token)."""
    exact = not isinstance(fwd, discrete.EditForward) or fwd.distinct
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 7, (6, 5), generator=g)
    for t in (torch.tensor(2), torch.tensor(5), torch.tensor([0, 1, 2, 3, 4, 5])):
        changed = (fwd.draw(x0, t if t.dim() else int(t), g) != x0).sum(1)
        assert (changed == t).all() if exact else (changed <= t).all()
