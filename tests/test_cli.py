"""`python -m udm …` end to end on tiny checkpoints."""

import subprocess
import sys

import numpy as np
import pytest

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
