"""The judges on known inputs, the comparison engine (one sampler = that sampler alone; batched samplers
= each alone), the reference schedulers, and `python -m udm evaluate`."""

import numpy as np
import pytest
import torch

from udm import cold_pipeline as cp
from udm import compare, core, data, judge, reference, text
from udm import encoding_pipeline as ep
from udm import hot_pipeline as hp
from udm import text_pipeline as tp
from udm.cli import main


# ---------------------------------------------------------------- judges
def test_held_out_digits_beat_noise():
    test = data.images("mnist28", "test")[0]  # digits the judge's classifier never saw: half against half
    noise = torch.rand(250, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    cnn = judge.load_classifier()
    good, bad = judge.digit_scores(cnn, test[:250], test[250:]), judge.digit_scores(cnn, noise, test[250:])
    assert good["confident"] > 0.8
    assert good["frechet"] < 0.05 * bad["frechet"]  # (the classifier is confident on noise: Fréchet is the check)


def test_identical_sets_have_zero_distance():
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(1))
    assert judge.sliced_wasserstein(x, x) == 0.0
    f = torch.randn(300, 8, generator=torch.Generator().manual_seed(2)).double().numpy()
    f[:, 3] = 0.0  # a dead feature: a singular covariance
    assert abs(judge.frechet(f, f)) < 1e-6
    assert judge.frechet(f, f + 0.1) == pytest.approx(8 * 0.01, abs=1e-6)  # a shift: ‖Δμ‖² alone


def test_two_d_distance_small_for_same_distribution_large_for_shifted():
    a, b = data.points("moons", 4000, seed=1), data.points("moons", 4000, seed=2)
    same, shifted = judge.sliced_wasserstein(a, b), judge.sliced_wasserstein(a, b + torch.tensor([1.0, 0.0]))
    assert same < 0.05 and shifted > 0.5
    assert judge.evaluate("moons", b)["sliced_wasserstein"] < 0.05
    unequal = judge.sliced_wasserstein(a, b[:1000])  # quantile functions on a common grid
    assert unequal < 0.08


def test_word_judge_on_known_lists():
    held = list(text.split("en5", "test"))[:300]
    s = judge.evaluate("en5", held)
    assert s == {"valid": 1.0, "novel_valid": 1.0, "distinct": 1.0}
    s = judge.evaluate("en5", ["zzzzq", "zzzzq", held[0], held[0]])
    assert s == {"valid": 0.5, "novel_valid": 0.5, "distinct": 0.5}


def test_evaluate_rejects_bad_samples():
    with pytest.raises(ValueError, match=r"\(N ≥ 2, 1, 28, 28\)"):
        judge.evaluate("mnist28", torch.zeros(4, 28, 28))
    with pytest.raises(ValueError, match="NaN"):
        judge.evaluate("moons", torch.full((4, 2), float("nan")))
    with pytest.raises(ValueError, match="unknown dataset"):
        judge.evaluate("cifar", torch.zeros(4, 2))


def test_cli_evaluate(tmp_path, capsys):
    f = tmp_path / "w.npz"
    np.savez(f, texts=np.array(list(text.split("en5", "test"))[:50]))
    assert main(["evaluate", str(f), "--data", "en5", "--json"]) == 0
    assert '"valid": 1.0' in capsys.readouterr().out
    g = tmp_path / "p.npz"
    np.savez(g, samples=data.points("moons", 500, seed=3).numpy())
    assert main(["evaluate", str(g), "--data", "moons"]) == 0
    assert "sliced_wasserstein:" in capsys.readouterr().out
    bad = tmp_path / "obj.npz"
    np.savez(bad, samples=np.array([{"a": 1}], dtype=object))  # would need unpickling
    assert main(["evaluate", str(bad), "--data", "moons"]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.npz"), "--data", "moons"]) == 1
    np.save(tmp_path / "a.npy", np.zeros((4, 2)))
    np.savez(tmp_path / "s.npz", samples=np.array(["ab", "cd"]))
    np.savez(tmp_path / "t.npz", texts=np.array("hello"))
    for name, data_name, message in (
        ("a.npy", "moons", "single array"),
        ("s.npz", "moons", "must be numbers"),
        ("t.npz", "en5", "1-D array of strings"),
    ):
        assert main(["evaluate", str(tmp_path / name), "--data", data_name]) == 2
        assert message in capsys.readouterr().err


# ---------------------------------------------------------------- the engine
def _same(a, b):
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


@pytest.mark.parametrize("name,sampler", [("moons", "ddpm"), ("mnist28", "analytic-ddpm"), ("digits8", "ddim")])
def test_one_hot_sampler_equals_it_alone(tiny_checkpoints, name, sampler):
    req = compare.Request("hot", name, (compare.Entry(sampler, 5),), n=6, seed=3)
    (r,) = compare.run(req, "cpu")
    alone = core.last(hp.hot_plan(hp.HotRequest(data=name, sampler=sampler, steps=5, n=6, seed=3), "cpu").steps()).x_s
    assert _same(r.final, hp.to_data(name, alone))
    assert r.evaluations == 5 and len(r.frames) == 5 and r.batched_with == 1


def test_batched_samplers_each_match_their_own_run(tiny_checkpoints):
    entries = (compare.Entry("ddim", 4), compare.Entry("ddpm", 4), compare.Entry("analytic-ddim", 4))
    results = compare.run(compare.Request("hot", "moons", entries, n=50, seed=1), "cpu")
    assert all(r.batched_with == 3 for r in results)
    ddim = hp.to_data("moons", core.last(hp.hot_plan(hp.HotRequest("moons", "ddim", 4, 50, 1), "cpu").steps()).x_s)
    assert torch.allclose(results[0].final, ddim, atol=1e-5)  # deterministic: the batch changes nothing
    assert not torch.allclose(results[1].final, ddim, atol=1e-3)


def test_cold_naive_and_improved_share_one_restorer_call_per_step(tiny_checkpoints, monkeypatch):
    calls = []
    call = cp.VariantRestorer.__call__
    monkeypatch.setattr(cp.VariantRestorer, "__call__", lambda self, x, t: calls.append(len(x)) or call(self, x, t))
    entries = (compare.Entry("fade σ=0 naive"), compare.Entry("fade σ=0 improved"))
    naive, improved = compare.run(compare.Request("cold", "mnist28", entries, n=3, seed=4), "cpu")
    T = cp.cold_T("mnist28")
    assert calls == [6] * T and naive.batched_with == improved.batched_with == 2  # one call of 2 × 3 per step
    for r, rule in ((naive, "naive"), (improved, "improved")):  # σ = 0: no noise, so each equals its lone run
        alone = core.last(cp.cold_plan(cp.ColdRequest("fade", rule, n=3, seed=4), "cpu").steps()).x_s
        assert torch.allclose(r.final, hp.to_data("mnist28", alone), atol=1e-5)  # (a batch of 6 sums in its order)


def test_on_a_cpu_only_small_stacks_share_a_call(tiny_checkpoints, monkeypatch):
    entries = (compare.Entry("fade σ=0 naive"), compare.Entry("fade σ=0 improved"), compare.Entry("fade σ=0 naive"))
    monkeypatch.setitem(compare.CPU_STACK_LIMIT, "images", 6)
    results = compare.run(compare.Request("cold", "mnist28", entries, n=3, seed=4), "cpu")
    assert [r.batched_with for r in results] == [2, 2, 1]  # 2 × 3 fit in 6; the third runs on its own
    assert torch.allclose(results[0].final, results[2].final, atol=1e-5)  # and gives what it gives alone


def test_encoding_and_mask_samplers_batch_edit_variants_do_not(tiny_checkpoints):
    entries = (compare.Entry("ddpm", 3), compare.Entry("ddim", 3))
    ddpm, ddim = compare.run(compare.Request("encoding", "mnist28", entries, n=4, seed=2), "cpu")
    assert ddpm.batched_with == ddim.batched_with == 2
    alone = core.last(ep.encoding_plan(ep.EncodingRequest("mnist28", "ddim", 3, 4, 2), "cpu").steps()).x_s
    # DDIM draws no noise: the batch changes nothing but the network's summation order
    assert torch.allclose(ddim.final, ep.decode("mnist28", alone), atol=1e-5)
    entries = (compare.Entry("naive"), compare.Entry("improved"))
    for r in compare.run(compare.Request("mask", "en5", entries, n=6, seed=1), "cpu"):
        assert r.batched_with == 2 and len(r.final) == 6 and all(len(w) == 5 and "▢" not in w for w in r.final)
    for r in compare.run(compare.Request("edit", "en5", entries, n=6, seed=1), "cpu"):
        assert r.batched_with == 1  # v1 and v2 are different posteriors: one run each


def test_batch_refuses_runs_that_cannot_share_a_network_call():
    post = lambda x, t: x  # noqa: E731
    a = core.Plan(post, None, torch.zeros(2, 3), (1, 2), torch.Generator())
    with pytest.raises(ValueError, match="same posterior, timesteps"):
        core.batch([a, core.Plan(post, None, torch.zeros(2, 3), (1, 3), torch.Generator())])
    assert core.batch([a]) is a

    class Peeking:  # a rule that asks its posterior about something else than its own x_t
        def predict_x0(self, posterior, x_t, t, s, g):
            return posterior(x_t + 1, t)

    with pytest.raises(RuntimeError, match="another x_t"):
        core.Batched((Peeking(), Peeking())).predict_x0(post, torch.zeros(4, 3), 2, 1, torch.Generator())


def test_diffusers_ddim_records_where_it_really_steps(tiny_checkpoints):
    model = hp.hot_model("moons", device="cpu")
    x_T = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    steps = list(reference.diffusers_steps(model, "diffusers-ddim", x_T, 7, torch.Generator()))
    assert [st.s for st in steps] == [st.t - 1000 // 7 for st in steps]
    assert steps[1].t != steps[0].s  # K = 7 does not divide T: the next step starts off the grid DDIM stepped to
    assert steps[-1].s == 1  # ... and the last one ends at t = 1, one step short of x_0
    five = list(reference.diffusers_steps(model, "diffusers-ddim", x_T, 5, torch.Generator()))
    assert [st.s for st in five] == [800, 600, 400, 200, 0]


def test_request_checks_eta_and_counts_network_evaluations():
    with pytest.raises(ValueError, match="η applies to"):
        compare.Request("hot", "moons", (compare.Entry("ddpm", 5, 0.5),))
    req = compare.Request(
        "hot", "mnist28", (compare.Entry("ddim", 50, 1.0), compare.Entry("diffusers-dpm-solver++", 20)), n=10
    )
    assert compare.image_cost(req) == 10 * (50 + 20) and req.entries[0].label == "ddim, η = 1, 50 steps"
    enc = compare.Request("encoding", "mnist28", (compare.Entry("ddpm", 10),), n=3)
    assert compare.image_cost(enc) == 3 * 19
    assert compare.image_cost(compare.Request("hot", "moons", (compare.Entry("ddpm", 1000),), n=4000)) == 0
    loo = compare.Entry(reference.EDIT[1], 5)
    assert compare.network_evaluations("edit", "en5", loo) == 9
    assert compare.network_evaluations("mask", "zh4", compare.Entry("naive")) == 4


def test_diffusers_schedulers_run_on_the_same_network(tiny_checkpoints):
    entries = [compare.Entry(s, 5) for s in reference.HOT]
    half = len(entries) // 2
    results = [
        r
        for part in (entries[:half], entries[half:])
        for r in compare.run(compare.Request("hot", "moons", tuple(part), n=20, seed=0), "cpu")
    ]
    for r in results:
        assert r.final.shape == (20, 2) and torch.isfinite(r.final).all()
        assert r.frames[0][0] == 1000 and r.evaluations == reference.evaluations(r.entry.sampler, 5)
    assert {r.evaluations for r in results} == {5, 9}  # Heun: two per step but the last
    # DDIM (η = 0) through diffusers equals udm's DDIM on diffusers' grid
    model = hp.hot_model("moons", device="cpu")
    x_T = torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
    sched = reference.diffusers_scheduler("diffusers-ddim", model.schedule, 5)
    taus = sorted(int(t) + 1 for t in sched.timesteps)
    from udm import hot

    ours = core.last(
        core.sample(model.posterior, hot.make_reverse("ddim", model.schedule), x_T, taus, torch.Generator())
    ).x_s
    theirs = core.last(reference.diffusers_steps(model, "diffusers-ddim", x_T, 5, torch.Generator())).x_s
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_other_processes_one_sampler_equals_it_alone(tiny_checkpoints):
    (r,) = compare.run(compare.Request("mask", "en5", (compare.Entry("improved"),), n=5, seed=2), "cpu")
    alone = core.last(tp.text_plan(tp.TextRequest("mask", "en5", "improved", n=5, seed=2), "cpu").steps()).x_s
    assert r.final == text.vocab("en5").decode(alone)
    (r,) = compare.run(compare.Request("encoding", "mnist28", (compare.Entry("ddim", 3),), n=4, seed=2), "cpu")
    alone = core.last(ep.encoding_plan(ep.EncodingRequest("mnist28", "ddim", 3, 4, 2), "cpu").steps()).x_s
    assert torch.equal(r.final, ep.decode("mnist28", alone)) and r.evaluations == 5
    (r,) = compare.run(compare.Request("cold", "mnist28", (compare.Entry("blur σ=0 improved"),), n=3, seed=4), "cpu")
    alone = core.last(cp.cold_plan(cp.ColdRequest("blur", "improved", n=3, seed=4), "cpu").steps()).x_s
    assert torch.equal(r.final, hp.to_data("mnist28", alone))
    (r,) = compare.run(compare.Request("edit", "en5", (compare.Entry("improved"),), n=5, seed=6), "cpu")
    alone = core.last(tp.text_plan(tp.TextRequest("edit", "en5", "improved", n=5, seed=6), "cpu").steps()).x_s
    assert r.final == text.vocab("en5").decode(alone) and r.evaluations == 5


def test_cold_comparison_gets_the_digit_judge(tiny_checkpoints):
    (r,) = compare.run(compare.Request("cold", "mnist28", (compare.Entry("fade σ=0 naive"),), n=16, seed=0), "cpu")
    assert set(r.figures) == {"confident", "frechet", "distinct"} and r.figures["frechet"] > 0


def test_amused_scheduler_fills_every_position(tiny_checkpoints):
    (r,) = compare.run(compare.Request("mask", "en5", (compare.Entry("diffusers-amused", 3),), n=8, seed=0), "cpu")
    assert len(r.final) == 8 and all(len(w) == 5 and text.MASK_CHAR not in w for w in r.final)
    assert len(r.frames) == 3 and r.frames[0][0] == 5 and set(r.figures) == {"valid", "novel_valid", "distinct"}


@pytest.mark.parametrize("sampler", ["diffusers-discrete-ddim", "diffusers-discrete-ddim+loo"])
def test_discrete_ddim_on_the_edit_model(tiny_checkpoints, sampler):
    req = compare.Request("edit", "en5", (compare.Entry(sampler, 4), compare.Entry("naive")), n=6, seed=1)
    r, naive = compare.run(req, "cpu")
    assert len(r.final) == 6 and all(len(w) == 5 and text.MASK_CHAR not in w for w in r.final)
    assert r.frames[0][1] == naive.frames[0][1]  # the same random start as the udm samplers
    ts = [f[0] for f in r.frames]
    assert ts[0] == 5 and ts[-1] == 1 and ts == sorted(ts, reverse=True)
    assert r.evaluations == (7 if sampler.endswith("loo") else 4)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(process="warm", data="moons", entries=(compare.Entry("ddim", 5),)), "unknown process"),
        (dict(process="hot", data="en5", entries=(compare.Entry("ddim", 5),)), "unknown dataset"),
        (dict(process="hot", data="moons", entries=()), "between 1 and 5"),
        (dict(process="hot", data="moons", entries=(compare.Entry("ddim", 5),) * 6), "between 1 and 5"),
        (dict(process="hot", data="moons", entries=(compare.Entry("plms", 5),)), "unknown sampler"),
        (dict(process="hot", data="moons", entries=(compare.Entry("ddim"),)), "needs a number of steps"),
        (dict(process="edit", data="en5", entries=(compare.Entry("diffusers-amused", 5),)), "unknown sampler"),
        (dict(process="hot", data="mnist28", entries=(compare.Entry("ddim", 5),), n=300), "between 1 and 256"),
    ],
)
def test_request_validation(tiny_checkpoints, kwargs, match):
    with pytest.raises(ValueError, match=match):
        compare.Request(**kwargs)


def test_steps_above_T_are_refused(tiny_checkpoints):
    with pytest.raises(ValueError, match="T=1000"):
        compare.run(compare.Request("hot", "moons", (compare.Entry("ddim", 1001),), n=2), "cpu")
