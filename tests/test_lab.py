"""The Lab: composed forward processes equal the built-in ones, the reverse rules that follow from F are
right on exact posteriors, specs are checked before any work, and a short headless training makes a
checkpoint that the CLI samples."""

import json
import random

import numpy as np
import pytest
import torch

from udm import cli, cold, compare, core, data, discrete, hot, judge, lab, oracle, text
from udm import lab_pipeline as lp
from udm.device import make_generator
from udm.schedule import make

G = lambda seed=0: torch.Generator().manual_seed(seed)  # noqa: E731
WORDS = tuple(text.words("en5")[:40])


# ---------------------------------------------------------------- composed forwards equal the built-in ones
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_noise_is_hot_diffusions_forward(schedule):
    fwd = lab.forward_of(lab.Spec("moons", ("noise",), schedule=schedule, T=400))
    ref = hot.GaussianForward(make(schedule, 400))
    x0, eps = torch.randn(64, 2, generator=G()), torch.randn(64, 2, generator=G(1))
    t = torch.randint(1, 401, (64,), generator=G(2))
    torch.testing.assert_close(fwd.sample(x0, t, eps), ref.sample(x0, t, eps), rtol=0, atol=1e-6)
    for s in (1, 200, 400):
        torch.testing.assert_close(fwd.sample(x0, s, eps), ref.sample(x0, s, eps), rtol=0, atol=1e-6)
        torch.testing.assert_close(fwd.noise_from(x0, fwd.sample(x0, s, eps), s), eps, rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    "blocks,T,gaussian,sigma",
    [
        (("blur",), 50, True, 0.0),
        (("blur", "fade"), 1000, True, 0.0),
        (("fade",), 20, False, 0.3),
        (("mask",), 50, False, 0.1),
    ],
)
def test_a_training_batch_of_timesteps_is_drawn_as_each_t_alone(blocks, T, gaussian, sigma):
    """The batched degradations (one call for a batch of t's) give what one call per t gives."""
    x0 = torch.rand(48, 1, 14, 14, generator=G())
    eps = torch.randn(48, 1, 14, 14, generator=G(1))
    t = torch.randint(1, T + 1, (48,), generator=G(2))
    composed = lab.Composed(blocks, T, make("linear", T) if gaussian else None, sigma)
    torch.testing.assert_close(
        composed.sample(x0, t, eps), core.per_timestep(composed.sample, x0, t, eps), rtol=0, atol=1e-6
    )
    if len(blocks) == 1 and not gaussian:
        ref = cold.ColdForward(cold.Degradation(blocks[0], T), sigma)
        torch.testing.assert_close(ref.sample(x0, t, eps), core.per_timestep(ref.sample, x0, t, eps), rtol=0, atol=1e-6)
        torch.testing.assert_close(composed.sample(x0, t, eps), ref.sample(x0, t, eps), rtol=0, atol=1e-6)


@pytest.mark.parametrize("block,sigma", [("fade", 0.0), ("blur", 0.0), ("blur", 0.2), ("pixelate", 0.1), ("mask", 0.0)])
def test_deterministic_blocks_are_cold_diffusions_forward(block, sigma):
    fwd = lab.forward_of(lab.Spec("mnist28", (block,), sigma=sigma, T=50))
    ref = cold.ColdForward(cold.Degradation(block, 50), sigma)
    x0 = data.training_set("mnist28")[:6]
    eps = torch.randn(x0.shape, generator=G())
    for t in (1, 17, 50):
        torch.testing.assert_close(fwd.sample(x0, t, eps), ref.sample(x0, t, eps), rtol=0, atol=1e-6)


def test_blur_plus_noise_is_the_schedule_on_the_blurred_image():
    fwd = lab.forward_of(lab.Spec("digits8", ("blur", "noise"), T=100))
    sch = make("linear", 100)
    x0, eps = data.training_set("digits8")[:4], torch.randn(4, 1, 8, 8, generator=G())
    for t in (1, 50, 100):
        want = float(sch.abar[t]) * cold.Degradation("blur", 100)(x0, t) + float(sch.bbar[t]) * eps
        torch.testing.assert_close(fwd.sample(x0, t, eps), want, rtol=0, atol=1e-6)
    assert torch.equal(fwd.sample(x0, 0, eps), x0)  # x_0 is data


# ---------------------------------------------------------------- the reverse rules on perfect posteriors
@pytest.mark.parametrize(
    "forward,sigma", [(("blur",), 0.0), (("fade",), 0.3), (("pixelate", "mask"), 0.0), (("blur", "noise"), 0.0)]
)
def test_improved_rule_with_a_perfect_posterior_walks_the_forward_path_back_to_x0(forward, sigma):
    """q(x_0|x_t) = δ(x_0): the improved rule reads ε back, so x_s = F_s(x_0, ε) at every step (the same ε)
    and the run ends at x_0 exactly; the naive rule draws fresh noise, leaving that path wherever b_s > 0."""
    spec = lab.Spec("digits8", forward, sigma=sigma, T=40)
    fwd = lab.forward_of(spec)
    x0 = data.training_set("digits8")[:8]
    eps = torch.randn(x0.shape, generator=G(3))
    perfect = lambda x_t, t: x0  # noqa: E731
    for rule in ("improved", "naive"):
        plan = core.Plan(perfect, lab.reverse_of(spec, rule), fwd.sample(x0, 40, eps), tuple(range(1, 41)), G())
        steps = list(plan.steps())
        torch.testing.assert_close(steps[-1].x_s, x0, rtol=0, atol=0)
        mid = steps[10]
        on_path = torch.allclose(mid.x_s, fwd.sample(x0, mid.s, eps), atol=1e-5)
        assert on_path == (rule == "improved" or fwd.coefficients(mid.s)[1] == 0), rule


N = 4000
MIX = data.gaussians8()


def _oracle_run(rule: str, K: int) -> torch.Tensor:
    spec = lab.Spec("gaussians8", ("noise",))
    sch = lab.forward_of(spec).schedule
    post = hot.EpsPosterior(oracle.MixtureEps(MIX, sch), sch)
    x0 = data.points("gaussians8", 20_000, seed=0)
    return core.last(lab.plan(spec, post, rule, N, make_generator(0, "cpu"), steps=K, x0=x0).steps()).x_s


def _close_to_mixture(x) -> bool:
    d = judge.mixture_distance(x, MIX)  # 4,000 fresh points of the data: weight 0.010, mean 0.025, cov 0.0074
    return d["weight_err"] < 0.03 and d["mean_err"] < 0.05 and d["cov_err"] < 0.015


@pytest.mark.parametrize("rule,K", [("ddpm", 200), ("ddim", 100), ("improved", 100)])
def test_gaussian_rules_sample_the_mixture_with_the_exact_posterior(rule, K):
    assert _close_to_mixture(_oracle_run(rule, K)), judge.mixture_distance(_oracle_run(rule, K), MIX)


def test_naive_rule_on_noise_collapses_the_components():
    """x_s = F_s(x̂_0, fresh ε) with x̂_0 the posterior mean is the post's naive baseline: too narrow."""
    d = judge.mixture_distance(_oracle_run("naive", 100), MIX)
    assert d["cov_err"] > 0.015, d


def test_improved_on_noise_is_ddim_step_for_step():
    spec = lab.Spec("moons", ("noise",), T=200)
    sch = lab.forward_of(spec).schedule
    post = hot.EpsPosterior(lambda x, t: torch.tanh(x) * 0.5, sch)
    x0 = data.points("moons", 500)
    runs = [list(lab.plan(spec, post, r, 64, G(5), steps=20, x0=x0).steps()) for r in ("improved", "ddim")]
    for a, b in zip(*runs):
        torch.testing.assert_close(a.x_s, b.x_s, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("block", ["mask", "edit"])
def test_token_rules_with_the_exact_posterior_make_only_words_of_the_list(block):
    spec = lab.Spec("words", (block,), words=WORDS)
    v = lab.vocab(spec)
    x0 = v.encode(WORDS)
    prior = torch.full((len(x0),), 1 / len(x0))
    for rule in ("naive", "improved"):
        variant = "mask" if block == "mask" else ("edit-v2" if rule == "improved" else "edit-v1")
        post = discrete.ExactPosterior(x0, prior, variant, mask=v.MASK)
        final = core.last(lab.plan(spec, post, rule, 200, G(1), x0=x0).steps()).x_s
        assert set(v.decode(final)) <= set(WORDS)


# ---------------------------------------------------------------- what applies, and specs checked first
def test_rules_that_apply_and_why_others_do_not():
    assert lab.rules(lab.Spec("moons", ("noise",))) == ("naive", "improved", "ddpm", "ddim", "analytic-ddpm")
    blurred = lab.Spec("digits8", ("blur", "noise"))
    assert lab.rules(blurred) == ("naive", "improved")
    assert "blur" in lab.not_offered(blurred)["ddpm"]
    with pytest.raises(ValueError, match="ddim does not apply to blur\\+noise on digits8"):
        lab.reverse_of(blurred, "ddim")
    assert "tokens" in lab.not_offered(lab.Spec("en5", ("mask",)))["ddpm"]


@pytest.mark.parametrize(
    "spec,message",
    [
        (dict(data="moons", forward=["smudge"]), "unknown block 'smudge'"),
        (dict(data="moons", forward=["blur"]), "does not apply to points"),
        (dict(data="en5", forward=["noise"]), "does not apply to words"),
        (dict(data="digits8", forward=["noise", "blur"]), "noise goes last"),
        (dict(data="digits8", forward=[]), "at least one block"),
        (dict(data="digits8", forward=["blur", "blur"]), "appears twice"),
        (dict(data="digits8", forward=["noise"], sigma=0.2), "leave it at 0"),
        (dict(data="digits8", forward=["noise"], T=5), "T must be between 21 and 1000"),
        (dict(data="en5", forward=["mask"], T=7), "word length"),
        (dict(data="words", forward=["mask"], words=["abc"] * 2), "needs 20 to 5000 words"),
        (dict(data="words", forward=["mask"], words=[*WORDS[:30], "toolong"]), "same length"),
        (dict(data="words", forward=["mask"], words=[*WORDS[:30], "ab?de"]), "may not hold"),
        (dict(data="drawing", forward=["noise"], points=[[0, 0]] * 3), "draw more"),
        (dict(data="moons", forward=["noise"], color="red"), "unknown spec field 'color'"),
        (dict(data="moons", forward="noise", sigma="x"), "'sigma' must be a number"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_specs_are_refused_with_what_is_allowed(spec, message):
    with pytest.raises(ValueError, match=message):
        lab.Spec.from_dict(spec)


def test_specs_are_fuzzed_and_only_ever_refused_with_a_value_error():
    rnd = random.Random(0)
    pool = [None, 0, -1, 3.5, "noise", "blur+noise", [], ["noise"], ["mask", "edit"], {"a": 1}, "x" * 50, True, 1e309]
    keys = ["data", "forward", "T", "schedule", "sigma", "words", "points", "extra"]
    for _ in range(400):
        d = {k: rnd.choice(pool + list(lab.LAB_DATA)) for k in rnd.sample(keys, rnd.randint(0, len(keys)))}
        try:
            lab.Spec.from_dict(d)
        except ValueError:
            pass
    for junk in ("{", "[]", '{"data": "moons", "forward": ["noise"], "T": 1e999}', "null"):
        with pytest.raises(ValueError):
            lab.Spec.from_json(junk)


def test_spec_round_trips_through_json():
    s = lab.Spec("words", ("edit",), words=WORDS)
    assert lab.Spec.from_json(json.dumps(s.to_dict())) == s
    d = lab.Spec("drawing", ("noise",), points=lab.points_from_ink(np.eye(30)), schedule="cosine")
    assert lab.Spec.from_json(json.dumps(d.to_dict())) == d


def test_a_drawing_becomes_a_point_cloud_and_an_empty_one_is_refused():
    ink = np.zeros((100, 100))
    ink[20:80, 48:52] = 1  # a vertical stroke
    pts = torch.tensor(lab.points_from_ink(ink))
    assert pts[:, 1].abs().max() == pytest.approx(2.0, abs=0.1) and pts[:, 0].abs().max() < 0.3
    with pytest.raises(ValueError, match="empty"):
        lab.points_from_ink(np.zeros((50, 50)))


def test_the_strip_shows_x0_to_xT_before_training():
    ts, xs = lab.strip(lab.Spec("digits8", ("fade",)), frames=6)
    assert ts[0] == 0 and ts[-1] == 50 and xs.shape == (6, 1, 1, 8, 8)
    assert xs[-1].std() < 1e-6  # fully faded: the mean grey
    ts, ws = lab.strip(lab.Spec("en5", ("mask",)))
    assert ts == [0, 1, 2, 3, 4, 5] and all(w == "_____" for w in ws[-1])


# ---------------------------------------------------------------- training, checkpoints, the CLI, Compare
def test_short_training_lowers_the_loss_and_saves_a_checkpoint_the_cli_samples(tmp_path, capsys):
    out = tmp_path / "lab"
    assert (
        cli.main(["lab", "--data", "gaussians8", "--forward", "noise", "--seconds", "3", "--small", "--out", str(out)])
        == 0
    )
    cfg = json.loads((out / "config.json").read_text())
    curve = [loss for _, _, loss in cfg["train"]["loss_curve"]]
    assert curve[-1] < 0.8 * curve[0], curve
    assert set(cfg["figures"]) == set(lab.rules(lab.Spec("gaussians8", ("noise",))))
    assert {"model.safetensors", "spec.json", "rebuild.py", "README.md", "stats.safetensors"} <= {
        f.name for f in out.iterdir()
    }
    npz = tmp_path / "s.npz"
    args = ["sample", "--checkpoint", str(out), "--sampler", "ddpm", "--steps", "10", "-n", "50", "--seed", "3"]
    assert cli.main([*args, "--out", str(npz)]) == 0
    z = np.load(npz)
    assert z["samples"].shape == (50, 2) and z["x0_hat"].shape == (10, 50, 2) and z["timesteps"].shape == (10,)
    assert cli.main(["sample", "--checkpoint", str(out), "--sampler", "blur", "--out", str(npz)]) == 2
    assert "valid: naive, improved, ddpm" in capsys.readouterr().err


def test_words_from_a_file_train_and_sample_as_texts(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("\n".join(WORDS) + "\n\n")
    out = tmp_path / "lab"
    assert (
        cli.main(["lab", "--forward", "mask", "--words", str(words), "--seconds", "2", "--small", "--out", str(out)])
        == 0
    )
    npz = tmp_path / "s.npz"
    assert cli.main(["sample", "--checkpoint", str(out), "-n", "12", "--out", str(npz)]) == 0
    z = np.load(npz)
    assert z["texts"].shape == (12,) and all(len(w) == 5 for w in z["texts"])
    bad = tmp_path / "bad.txt"
    bad.write_text("apple\npear\n" * 20)
    assert cli.main(["lab", "--forward", "mask", "--words", str(bad), "--out", str(out)]) == 2


def test_a_loaded_checkpoint_samples_what_the_trained_model_sampled(tmp_path):
    run = lp.Training(lab.Spec("digits8", ("blur",), T=10), seconds=1, small=True)
    list(run.steps())
    trained = run.trained()
    trained.save(tmp_path)
    again = lp.Trained.load(tmp_path)
    for rule in ("naive", "improved"):
        torch.testing.assert_close(again.sample(rule, 4, seed=2), trained.sample(rule, 4, seed=2), rtol=0, atol=0)


def test_a_stop_event_ends_training_at_once():
    import threading

    stop = threading.Event()
    run = lp.Training(lab.Spec("moons", ("noise",)), seconds=60, small=True)
    reports = []
    for r in run.steps(stop, every=0.0):
        reports.append(r)
        if r.step == 5:
            stop.set()
    assert reports[-1].done and reports[-1].step <= 6 and reports[-1].seconds < 5


def test_compare_runs_every_rule_of_a_lab_process_side_by_side():
    run = lp.Training(lab.Spec("moons", ("noise",), T=100), seconds=1, small=True)
    list(run.steps())
    p = lp.LabProcess(run.trained())
    entries = tuple(compare.Entry(r, steps=10) for r in ("naive", "improved", "ddpm", "analytic-ddpm"))
    results = compare.run(compare.Request(p, "moons", entries, n=64, seed=1))
    assert [len(r.final) for r in results] == [64] * 4
    assert all("sliced_wasserstein" in r.figures for r in results)
    x_T = [r.frames[0][1] for r in results]
    assert all(torch.equal(x, x_T[0]) for x in x_T)  # the same x_T for every rule


@pytest.mark.parametrize(
    "spec",
    [
        lab.Spec("moons", ("noise",), T=50),
        lab.Spec("digits8", ("blur",), T=8),
        lab.Spec("digits8", ("blur", "noise"), T=30),
        lab.Spec("mnist14", ("fade", "noise"), T=30, schedule="cosine"),
        lab.Spec("digits8", ("pixelate", "mask"), T=8, sigma=0.1),
        lab.Spec("words", ("mask",), words=WORDS),
        lab.Spec("words", ("edit",), words=WORDS),
    ],
    ids=lambda s: s.name,
)
def test_every_composition_trains_and_samples_with_every_rule(spec):
    run = lp.Training(spec, seconds=1, small=True)
    reports = list(run.steps())
    assert reports[-1].done and reports[-1].step >= 1
    p = lp.LabProcess(run.trained())
    for rule in lab.rules(spec):
        final = p.decode(spec.data, core.last(p.steps(p.request(data=spec.data, sampler=rule, n=3, steps=None))).x_s)
        assert len(final) == 3
        if spec.kind == "words":
            assert all(len(w) == 5 and "_" not in w for w in final)
        else:
            assert torch.isfinite(final).all() and final.shape[1:] == lab.example_shape(spec)
