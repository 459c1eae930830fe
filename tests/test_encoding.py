"""The encoding model: normalised latents, the reverse step against an exact posterior on a finite token
set, determinism and the last step, the pipeline, the CLI and the tab (tiny checkpoints)."""

import copy

import numpy as np
import pytest
import torch
from gradio_client.exceptions import AppError
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from udm import core, encoding, hot, nets, schedule
from udm import encoding_pipeline as ep
from udm.cli import main

_IMAGE_ENCODER = nets.ImageEncoder(latent=4, width=8)
_WORD_ENCODER = nets.WordEncoder(vocab=26, length=5, dim=16, hidden=16)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 4),
    scale=st.floats(1e-6, 1e6),
    constant=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_image_latent_has_unit_rms_for_any_input(n, scale, constant, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n, 1, 28, 28), scale) if constant else scale * torch.randn(n, 1, 28, 28, generator=g)
    with torch.no_grad():
        z = _IMAGE_ENCODER(x)
    assert z.shape == (n, 4, 7, 7)
    assert torch.allclose(z.pow(2).mean((1, 2, 3)), torch.ones(n), atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(tokens=st.lists(st.integers(0, 25), min_size=5, max_size=5), grow=st.floats(1e-3, 1e4))
def test_word_latent_has_unit_rms_per_position(tokens, grow):
    enc = copy.deepcopy(_WORD_ENCODER)
    with torch.no_grad():
        enc.out.weight.mul_(grow)  # a grown (or shrunk) encoder is brought back to unit scale all the same
        z = enc(torch.tensor([tokens, tokens[::-1]]))
    assert z.shape == (2, 5, 16)
    assert torch.allclose(z.pow(2).mean(-1), torch.ones(2, 5), atol=1e-4)


# ---------------------------------------------------------------- an exact oracle on a finite token set
V, L, D = 3, 2, 4
PROBS = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])  # independent positions: q(x_0 | x_t) factorises


class FixedEncoder(torch.nn.Module):
    """F(x)_i = a fixed unit-RMS vector per token (no context): the true posterior is closed-form."""

    def __init__(self):
        super().__init__()
        e = torch.randn(V, D, generator=torch.Generator().manual_seed(1))
        self.register_buffer("table", nets.normalise(e, (1,)))

    def forward(self, x):
        return self.table[x]


class ExactDecoder(torch.nn.Module):
    """log q(x_0,i = v | x_t) = log p_i(v) − ‖z_t,i − ᾱ_t e_v‖² / (2 β̄_t²) + const, times `wrong`."""

    def __init__(self, sched, table, log_prior):
        super().__init__()
        self.sched, self.table, self.log_prior = sched, table, log_prior

    def forward(self, z_t, t):
        a = self.sched.abar[t].float()[:, None, None, None]
        b = self.sched.bbar[t].float()[:, None, None, None]
        d2 = (z_t[:, :, None, :] - a * self.table[None, None]).pow(2).sum(-1, keepdim=True)
        return (self.log_prior[None] - d2[..., 0] / (2 * b[..., 0] ** 2)).float()


def _exact_model(sched, log_prior=None):
    enc = FixedEncoder()
    dec = ExactDecoder(sched, enc.table, PROBS.log() if log_prior is None else log_prior)
    return nets.EncodingModel("words", enc, dec)


def _frequencies(model, sched, name, steps, eta=None, temperature=1.0, n=20000):
    reverse = encoding.make_reverse(model, sched, name, eta=eta, temperature=temperature)
    out = core.last(encoding.plan(model, reverse, (n, L, D), steps, torch.Generator().manual_seed(0)).steps()).x_s
    return torch.stack([torch.bincount(out[:, i], minlength=V).float() / n for i in range(L)])


@pytest.mark.parametrize("name,steps,eta", [("ddpm", 20, None), ("ddim", 20, None), ("ddim", 5, 0.5)])
def test_exact_posterior_reproduces_the_data(name, steps, eta):
    """With x̂_0 drawn from the true q(x_0|x_t), DDPM and DDIM in the latent reproduce p(x_0) (UDM.md §1)."""
    sched = schedule.make("cosine", 200)
    tv = 0.5 * (_frequencies(_exact_model(sched), sched, name, steps, eta) - PROBS).abs().sum(1).max()
    assert tv < 0.02


def test_a_wrong_posterior_or_the_argmax_fails():
    sched = schedule.make("cosine", 200)
    flat = _exact_model(sched, log_prior=torch.zeros(L, V))  # ignores p(x_0): wrong posterior
    tv = 0.5 * (_frequencies(flat, sched, "ddpm", 20) - PROBS).abs().sum(1).max()
    assert tv > 0.1
    argmax = _frequencies(_exact_model(sched), sched, "ddim", 20, temperature=0.0)
    assert 0.5 * (argmax - PROBS).abs().sum(1).max() > 0.1


def test_last_step_returns_the_decoder_output_not_a_latent():
    sched = schedule.make("cosine", 200)
    model = _exact_model(sched)
    reverse = encoding.make_reverse(model, sched, "ddim", temperature=0.0)
    steps = list(encoding.plan(model, reverse, (8, L, D), 4, torch.Generator().manual_seed(3)).steps())
    assert len(steps) == 4 and steps[-1].s == 0
    assert steps[-1].x_s.shape == (8, L) and steps[-1].x_s.dtype == torch.long
    assert torch.equal(steps[-1].x_s, steps[-1].x0_hat)
    assert all(s.x_s.shape == (8, L, D) for s in steps[:-1])


def test_latent_step_is_the_hot_step_on_the_reencoded_guess():
    sched = schedule.make("cosine", 200)
    model = _exact_model(sched)
    reverse = encoding.make_reverse(model, sched, "ddim")
    z_t, x0 = torch.randn(4, L, D), torch.randint(0, V, (4, L))
    g = torch.Generator()
    expected = hot.HotReverse(sched, eta=0.0).step(z_t, model.encode(x0), 120, 60, g)
    assert torch.allclose(reverse.step(z_t, x0, 120, 60, g), expected)


def test_unknown_sampler_and_bad_temperature():
    sched = schedule.make("cosine", 200)
    with pytest.raises(ValueError, match="valid: ddpm, ddim"):
        encoding.make_reverse(_exact_model(sched), sched, "analytic-ddpm")
    with pytest.raises(ValueError, match="temperature"):
        encoding.make_reverse(_exact_model(sched), sched, "ddpm", temperature=-1)


# ---------------------------------------------------------------- pipeline on the tiny checkpoints
@pytest.mark.parametrize("name", ["mnist28", "en5"])
def test_ddim_is_deterministic_for_a_seed(tiny_checkpoints, name):
    req = ep.EncodingRequest(data=name, sampler="ddim", steps=4, n=3, seed=5)
    a, b = (core.last(ep.encoding_plan(req, "cpu").steps()).x_s for _ in range(2))
    assert torch.equal(a, b)
    other = core.last(ep.encoding_plan(ep.EncodingRequest(data=name, steps=4, n=3, seed=6), "cpu").steps()).x_s
    assert not torch.equal(a, other)
    assert a.shape == ((3, 1, 28, 28) if name == "mnist28" else (3, 5))


@pytest.mark.parametrize("name", ["mnist28", "en5"])
def test_ddim_depends_on_x_T_alone_ddpm_does_not(tiny_checkpoints, name):
    m = ep.encoding_model(name, "cpu")
    x_T = torch.randn(3, *encoding.latent_shape(m.model, m.config), generator=torch.Generator().manual_seed(0))

    def final(sampler, seed):
        reverse = encoding.make_reverse(m.model, m.schedule, sampler, temperature=0.0)
        taus = schedule.respace(m.T, 4)
        return core.last(
            core.sample(encoding.DecoderPosterior(m.model), reverse, x_T, taus, torch.Generator().manual_seed(seed))
        ).x_s

    assert torch.equal(final("ddim", 1), final("ddim", 2))  # no noise drawn after x_T: the generator is unused
    assert not torch.equal(final("ddpm", 1), final("ddpm", 2))


def test_request_validation(tiny_checkpoints):
    for kwargs, match in [
        (dict(data="zh4"), "valid: mnist28, en5"),
        (dict(sampler="naive"), "valid: ddpm, ddim"),
        (dict(n=0), "between 1 and"),
        (dict(temperature=1.0), "temperature applies to words"),
        (dict(data="en5", temperature=9.0), "temperature must be"),
        (dict(sampler="ddpm", eta=0.5), "eta applies to ddim"),
    ]:
        with pytest.raises(ValueError, match=match):
            ep.EncodingRequest(**kwargs)
    with pytest.raises(ValueError, match="between 1 and T=1000"):
        next(ep.encoding_plan(ep.EncodingRequest(steps=1001)).steps())


def test_round_trip_and_diagnostics(tiny_checkpoints):
    rt = ep.round_trip("en5", [1, 500, 1000], n=4)
    assert rt.x0.shape == (4, 5) and [x.shape for x in rt.x0_hat] == [(4, 5)] * 3
    assert rt.latents[0].shape == (4, 5, 16)
    with pytest.raises(ValueError, match="t must be between 1 and T"):
        ep.round_trip("mnist28", [0])
    import json

    cfg = json.loads((tiny_checkpoints / "encoding-en5" / "config.json").read_text())
    d = cfg["diagnostics"]
    assert abs(d["latent_rms"] - 1) < 1e-3 and set(d["per_t"]) == {"1", "250", "500", "750", "1000"}
    assert "char_accuracy" in d["per_t"]["1"]


@pytest.mark.parametrize("name", ["mnist28", "en5"])
def test_cli_sample_encoding(tiny_checkpoints, tmp_path, name):
    out = tmp_path / "e.npz"
    args = ["sample", "--process", "encoding", "--data", name, "--sampler", "ddpm", "--steps", "3", "-n", "4"]
    extra = ["--gif", str(tmp_path / "e.gif")] if name == "mnist28" else ["--temperature", "0.5"]
    assert main([*args, "--out", str(out), *extra]) == 0
    z = np.load(out)
    assert z["x_t"].shape[:2] == (3, 4) and z["timesteps"].tolist() == [1000, 501, 1]
    if name == "mnist28":
        assert z["samples"].shape == (4, 1, 28, 28) and z["x_t"].shape[2:] == (4, 7, 7)
        assert z["samples"].min() >= 0 and z["samples"].max() <= 1
        assert Image.open(tmp_path / "e.gif").is_animated
    else:
        assert z["texts"].shape == (4,) and all(len(w) == 5 for w in z["texts"])
        assert z["x0_hat"].shape == (3, 4) and z["x_t"].shape[2:] == (5, 16)


def test_cli_rejects_options_of_other_processes(tiny_checkpoints, tmp_path, capsys):
    rc = main(["sample", "--process", "encoding", "--k", "2", "--out", str(tmp_path / "x.npz")])
    assert rc == 2 and "--k does not apply to encoding" in capsys.readouterr().err


# ---------------------------------------------------------------- the tab
def _run(client, *args):
    return list(client.submit(*args, api_name="/encoding_run"))


@pytest.mark.parametrize(
    "args",
    [("mnist28", "ddim", 4, 0.0, 0.0, 0, 3), ("en5", "ddpm", 3, 0.0, 0.7, 1, 5), ("en5", "ddim", 2, 0.5, 0, 2, 2)],
)
def test_encoding_run_streams_then_finishes(client, args):
    updates = _run(client, *args)
    latent, x0_hat, caption, samples, info, gif, frame = updates[-1]
    for path in (latent, x0_hat, samples):
        assert Image.open(path).size[0] > 0
    assert Image.open(gif).is_animated
    assert frame["maximum"] == args[2] - 1 and f"{args[2]} decoder" in info
    assert ("valid" in info) == (args[0] == "en5")


def test_encoding_scrub_moves_between_frames(client):
    _run(client, "mnist28", "ddpm", 4, 0.0, 0.0, 0, 2)
    first, last = client.predict(0, api_name="/encoding_scrub"), client.predict(3, api_name="/encoding_scrub")
    assert "step 1/4" in first[2] and "step 4/4" in last[2]
    assert Image.open(first[0]).tobytes() != Image.open(last[0]).tobytes()


@pytest.mark.parametrize("name,what", [("mnist28", "pixel error"), ("en5", "character accuracy")])
def test_encoding_round_trip_endpoint(client, name, what):
    image, caption = client.predict(name, 3, 0, "1, 250, 500, 750", api_name="/encoding_round_trip")
    assert Image.open(image).size[0] > 100 and what in caption
    assert "t = 1, 250, 500, 750:" in caption and "t = 750:" in caption
    image, caption = client.predict(name, 3, 0, "617", api_name="/encoding_round_trip")
    assert "t = 617:" in caption and "t = 1:" not in caption  # any t


@pytest.mark.parametrize(
    "levels,match",
    [("", "give 1 to 10 values"), ("0, 5", "each t must be a whole number between 1 and 1000"), ("1 " * 11, "1 to 10")],
)
def test_round_trip_refuses_bad_t_values(client, levels, match):
    with pytest.raises(AppError, match=match):
        client.predict("mnist28", 0, 0, levels, api_name="/encoding_round_trip")


@pytest.mark.parametrize(
    "args,match",
    [
        (("zh4", "ddim", 4, 0.0, 0.0, 0, 3), "unknown data"),
        (("mnist28", "ddim", 0, 0.0, 0.0, 0, 3), "steps must be ≥ 1"),
        (("mnist28", "ddim", 4, 2.0, 0.0, 0, 3), "η must be"),
        (("mnist28", "ddim", 4, 0.0, 0.0, 0, 33), "number of samples"),
        (("en5", "ddim", 4, 0.0, 9.0, 0, 3), "temperature"),
        (("mnist28", "plms", 4, 0.0, 0.0, 0, 3), "unknown sampler"),
    ],
)
def test_encoding_bad_input_gets_a_clear_error(client, args, match):
    with pytest.raises(AppError, match=match):
        client.predict(*args, api_name="/encoding_run")
    assert len(_run(client, "en5", "ddim", 2, 0.0, 0.0, 0, 2)) >= 2  # and the server still answers


def test_switching_to_words_empties_and_hides_your_digit(tiny_checkpoints):
    from udm.app.encoding import _data_changed

    *_, pad = _data_changed("en5")
    assert pad["visible"] is False and pad["value"] is None
    *_, pad = _data_changed("mnist28")
    assert pad["visible"] is True
