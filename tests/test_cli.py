"""`python -m udm …` end to end on tiny checkpoints."""

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from udm.cli import main


@pytest.mark.parametrize("name,shape", [("moons", (2,)), ("digits8", (1, 8, 8))])
def test_sample_writes_the_npz_contract(tiny_checkpoints, tmp_path, name, shape):
    out = tmp_path / "s.npz"
    rc = main(
        [
            "sample",
            "--process",
            "hot",
            "--data",
            name,
            "--sampler",
            "ddim",
            "--steps",
            "5",
            "-n",
            "6",
            "--seed",
            "0",
            "--out",
            str(out),
            "--png",
            str(tmp_path / "s.png"),
            "--gif",
            str(tmp_path / "s.gif"),
        ]
    )
    assert rc == 0
    z = np.load(out)
    assert z["samples"].shape == (6, *shape) and z["samples"].dtype == np.float32
    assert z["x0_hat"].shape == (5, 6, *shape)
    assert list(z["timesteps"]) == [1000, 750, 501, 251, 1]  # Bao et al.'s even trajectory
    if len(shape) == 3:
        assert z["samples"].min() >= 0 and z["samples"].max() <= 1
    np.testing.assert_array_equal(z["samples"], z["x0_hat"][-1])
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "s.gif").read_bytes()[:3] == b"GIF"


def test_sample_is_reproducible(tiny_checkpoints, tmp_path):
    for i in range(2):
        assert (
            main(
                [
                    "sample",
                    "--data",
                    "moons",
                    "--sampler",
                    "analytic-ddpm",
                    "--steps",
                    "4",
                    "-n",
                    "3",
                    "--seed",
                    "7",
                    "--out",
                    str(tmp_path / f"{i}.npz"),
                ]
            )
            == 0
        )
    np.testing.assert_array_equal(np.load(tmp_path / "0.npz")["samples"], np.load(tmp_path / "1.npz")["samples"])


def test_train_through_accelerate_writes_a_checkpoint(tmp_path):
    assert (
        main(["train", "--data", "checkerboard", "--small", "--steps", "5", "--quiet", "--out", str(tmp_path / "ck")])
        == 0
    )
    for f in ("model.safetensors", "config.json", "stats.safetensors", "README.md"):
        assert (tmp_path / "ck" / f).is_file()


def test_a_text_model_trains_with_dropout_and_samples_without_it(tmp_path):
    """--dropout reaches the BERT while it trains, lands on the card's rebuild line, and the loaded model
    (eval mode) answers the same twice; a dropout of 1 is refused."""
    import json

    from udm import text, textmodel

    out = tmp_path / "m"
    args = ["train", "--process", "mask", "--data", "en5", "--small", "--steps", "3", "--batch-size", "8"]
    assert main([*args, "--dropout", "0.25", "--calibrate", "40", "--quiet", "--out", str(out)]) == 0
    meta = json.loads((out / "udm.json").read_text())
    assert meta["train"]["dropout"] == 0.25 and "--dropout 0.25" in (out / "README.md").read_text()
    assert meta["calibration"]["samples"] == 40 and "--calibrate 40" in (out / "README.md").read_text()
    # calibrated again by its own command, which refuses too few words to measure anything
    assert main(["calibrate", "--checkpoint", str(out), "--samples", "100"]) == 0
    assert json.loads((out / "udm.json").read_text())["calibration"]["samples"] == 100
    assert main(["calibrate", "--checkpoint", str(out), "--samples", "5"]) == 2
    assert main(["calibrate", "--checkpoint", str(tmp_path / "nothing")]) != 0
    model, _ = textmodel.load(out)
    assert model.config.hidden_dropout_prob == 0.25 and not model.training
    x = torch.full((4, 5), text.vocab("en5").MASK)
    first, again = (textmodel.char_logits(model, x, text.vocab("en5"), "mask", 5) for _ in range(2))
    assert torch.equal(first, again)
    assert (
        textmodel.bert(text.vocab("en5"), "mask", True, dropout=0.25)
        .train()(torch.zeros(64, 5, dtype=torch.long))
        .logits.std(0)
        .max()
        > 0
    )  # in training the same input gives different answers
    with pytest.raises(ValueError, match="dropout"):
        textmodel.default_config("mask", "en5", dropout=1.0)


def test_train_continues_from_a_checkpoint_with_init(tmp_path):
    """--init starts from the saved weights (at lr 0 they come back unchanged, the time table recomputed);
    the card lists both stages and rebuilds them in one line; a checkpoint of another network is refused."""
    from safetensors.torch import load_file

    from udm.train import default_config, train

    first, second = tmp_path / "a", tmp_path / "b"
    cfg = default_config("digits8", small=True, steps=3, batch_size=16, stats_grid=3, stats_per_t=4)
    train(cfg, first, progress=False)
    train(replace(cfg, steps=2, lr=0.0, warmup=0, init=str(first)), second, progress=False)
    weights = "unet/diffusion_pytorch_model.safetensors"
    a, b = load_file(str(first / weights)), load_file(str(second / weights))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    card = (second / "README.md").read_text()
    assert "stage 1: steps: 3 × batch 16" in card and "stage 2: steps: 2 × batch 16, AdamW lr 0.0" in card
    assert "--init checkpoints/b --steps 2 --lr 0.0 --warmup 0 --out checkpoints/b`" in card
    r = subprocess.run(
        [sys.executable, "-m", "udm", "train", "--data", "moons", "--small", "--quiet", "--init", str(first)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "differ from this run's" in r.stderr.strip().splitlines()[-1], r.stderr


@pytest.mark.parametrize(
    "args,valid",
    [
        (["sample", "--data", "cifar", "--out", "x.npz"], "moons, swissroll"),
        (["sample", "--sampler", "euler", "--out", "x.npz"], "ddpm, ddim"),
        (["sample", "--process", "lukewarm", "--out", "x.npz"], "valid: hot"),
        (["train", "--data", "cifar"], "mnist28"),
        (["sample", "--data", "moons", "--spacing", "cubic", "--out", "x.npz"], "even, quadratic, log-snr"),
        (["sample", "--sampler", "diffusers-heun", "--spacing", "even", "--out", "x.npz"], "place their own"),
    ],
)
def test_unknown_names_exit_2_with_one_line(args, valid):
    r = subprocess.run([sys.executable, "-m", "udm", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and valid in lines[0], r.stderr


@pytest.mark.parametrize(
    "args,shape",
    [
        (["--process", "hot", "--data", "moons", "--sampler", "diffusers-unipc", "--steps", "4"], (4, 5, 2)),
        (["--process", "hot", "--data", "moons", "--sampler", "diffusers-dpm-solver++-sde", "--steps", "3"], (3, 5, 2)),
        (["--process", "hot", "--data", "moons", "--sampler", "diffusers-heun", "--steps", "3"], (3, 5, 2)),
        (["--process", "mask", "--sampler", "diffusers-amused", "--steps", "5"], (5, 5)),
    ],
)
def test_sample_takes_the_reference_schedulers_compare_offers(tiny_checkpoints, tmp_path, args, shape):
    out = tmp_path / "s.npz"
    assert main(["sample", *args, "-n", "5", "--out", str(out)]) == 0
    assert np.load(out)["x0_hat"].shape[:3] == shape[:3]
    assert main(["sample", *args, "--eta", "0.5", "-n", "5", "--out", str(out)]) == 2


def test_the_edit_model_takes_its_last_step_with_the_mask_bert_unless_bert_only(tiny_checkpoints, tmp_path, capsys):
    """--model trained (the default) asks the mask BERT at t = 1, bert-only the edit BERT throughout; both make
    words of the alphabet; bert-only is the edit model's alone."""
    from udm import discrete
    from udm import text_pipeline as tp

    last = {m: tp.posterior(tp.TextRequest(process="edit", model=m)).last_step for m in ("trained", "bert-only")}
    assert last["trained"] is tp.text_model("mask", "en5")[0] and last["bert-only"] is None
    x = torch.zeros(3, 5, dtype=torch.long)
    assert isinstance(tp.posterior(tp.TextRequest(process="edit"))(x, 1), discrete.OneEdit)
    for model in ("trained", "bert-only"):
        out = tmp_path / f"{model}.npz"
        args = ["sample", "--process", "edit", "--data", "en5", "--model", model, "-n", "4", "--out", str(out)]
        assert main(args) == 0
        assert all(len(w) == 5 and w.isalpha() for w in np.load(out)["texts"])
    assert main(["sample", "--process", "mask", "--model", "bert-only", "-n", "2", "--out", str(out)]) == 2
    assert (
        capsys.readouterr().err.strip().splitlines()[-1].endswith("model for mask 'bert-only'; valid: trained, exact")
    )
