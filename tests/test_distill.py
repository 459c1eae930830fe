"""The few-step student (udm.distill): its grid, its v-parametrised posterior, its requests, and the
diffusers pipeline its folder is."""

import json

import numpy as np
import pytest
import torch

from udm import cli, core, distill, hot, process
from udm import hot_pipeline as hp
from udm.schedule import make

TWENTY = list(range(50, 1001, 50))


def test_grid_takes_the_teachers_timesteps_evenly_from_T():
    assert distill.grid(TWENTY, 4) == [250, 500, 750, 1000]
    assert distill.grid(TWENTY, 1) == [1000]
    assert distill.grid(TWENTY, 5) == [200, 400, 600, 800, 1000]
    assert distill.grid(TWENTY, 20) == TWENTY
    assert len(distill.grid(TWENTY, 3)) == 3
    for bad in (0, 21):
        with pytest.raises(ValueError, match="1 to 20 steps"):
            distill.grid(TWENTY, bad)


@pytest.mark.parametrize("t", [1, 10, 500, 1000])
def test_a_v_model_gives_the_posterior_its_x0_exactly(t):
    """v* = ᾱ ε − β̄ x_0 read through VEps and EpsPosterior returns x_0, also at t = T (ᾱ_T ≈ 0.006)."""
    sch = make("linear", 1000)
    g = torch.Generator().manual_seed(t)
    x0, eps = torch.rand(3, 1, 4, 4, generator=g) * 2 - 1, torch.randn(3, 1, 4, 4, generator=g)
    a, b = float(sch.abar[t]), float(sch.bbar[t])
    x_t, v = a * x0 + b * eps, a * eps - b * x0
    posterior = hot.EpsPosterior(hot.VEps(lambda x, tt: v, sch), sch)
    # (float32: at t = T the round trip through ε loses ~5e-5; a wrong formula is off by O(1))
    torch.testing.assert_close(posterior(x_t, t), x0, atol=1e-4, rtol=0)
    assert distill.v_loss(lambda x, tt: v, sch, x_t, torch.full((3,), t), x0).item() < 1e-10
    assert distill.v_loss(lambda x, tt: v + 0.1, sch, x_t, torch.full((3,), t), x0).item() > 1e-3 * max(a, b) ** 2


def test_the_students_card_names_the_teachers_weights(tiny_checkpoints):
    folder = tiny_checkpoints / "hot-mnist28-distilled"
    teacher = json.loads((folder / "config.json").read_text())["teacher"]
    assert teacher["model"] == "hot-mnist28" and teacher["trained_steps"] == 2  # the tiny teacher's 2 steps
    assert (
        "A few-step student of `hot-mnist28` (its weights after 2 training steps)" in (folder / "README.md").read_text()
    )


def test_the_distilled_request_runs_on_the_students_timesteps(tiny_checkpoints):
    times = hp.hot_model("mnist28", "distilled").timesteps
    assert times == (250, 500, 750, 1000)  # the tiny teacher's 4 steps
    for K in (1, 2, 4):
        steps = list(hp.hot_plan(hp.HotRequest(data="mnist28", model="distilled", steps=K, n=3)).steps())
        assert [s.t for s in steps] == distill.grid(list(times), K)[::-1]
        assert steps[-1].s == 0 and torch.isfinite(steps[-1].x_s).all()
        torch.testing.assert_close(steps[-1].x_s, steps[-1].x0_hat)  # the last step returns x̂_0
    with pytest.raises(ValueError, match="steps of the distilled model must be between 1 and 4"):
        hp.hot_plan(hp.HotRequest(data="mnist28", model="distilled", steps=5, n=2))
    with pytest.raises(ValueError, match="analytic-ddpm needs"):
        hp.hot_plan(hp.HotRequest(data="mnist28", model="distilled", sampler="analytic-ddpm", steps=2, n=2))
    with pytest.raises(ValueError, match="own timesteps"):
        hp.HotRequest(data="mnist28", model="distilled", spacing="quadratic")
    with pytest.raises(ValueError, match="only for mnist28"):
        hp.HotRequest(data="moons", model="distilled")


def test_diffusers_ddim_pipeline_opens_the_student_and_computes_what_udm_does(tiny_checkpoints):
    from diffusers import DDIMPipeline

    pipe = DDIMPipeline.from_pretrained(str(tiny_checkpoints / "hot-mnist28-distilled"), use_safetensors=True)
    req = hp.HotRequest(data="mnist28", model="distilled", steps=2, n=3, seed=5)
    plan = hp.hot_plan(req)
    ours = core.last(plan.steps()).x_s
    pipe.scheduler.set_timesteps(2)
    assert [int(t) + 1 for t in pipe.scheduler.timesteps] == [1000, 500]
    x = plan.x_T.clone()
    with torch.no_grad():
        for td in pipe.scheduler.timesteps:
            x = pipe.scheduler.step(pipe.unet(x, td).sample, td, x, eta=0.0).prev_sample
    torch.testing.assert_close(x, ours, atol=1e-4, rtol=1e-4)


def test_cli_samples_the_student_by_name_and_by_folder(tiny_checkpoints, tmp_path, capsys):
    out = tmp_path / "s.npz"
    args = ["sample", "--process", "hot", "--data", "mnist28", "--model", "distilled", "--steps", "2", "-n", "3"]
    assert cli.main([*args, "--out", str(out)]) == 0
    z = np.load(out)
    assert z["samples"].shape == (3, 1, 28, 28) and z["timesteps"].tolist() == [1000, 500]
    folder = str(tiny_checkpoints / "hot-mnist28-distilled")
    assert cli.main(["sample", "--checkpoint", folder, "--steps", "4", "-n", "2", "--out", str(out)]) == 0
    assert np.load(out)["timesteps"].tolist() == [1000, 750, 500, 250]
    assert cli.main(["sample", "--checkpoint", folder, "--model", "trained", "--out", str(out)]) == 2
    assert "holds a distilled model" in capsys.readouterr().err
    cfg = json.loads((tiny_checkpoints / "hot-mnist28-distilled" / "config.json").read_text())
    assert process.get("hot").request(data="mnist28", model="distilled").sampler == cfg["sampler"]  # its own rule
    assert cli.main([*args[:-2], "--steps", "9", "--out", str(out)]) == 2
    assert "between 1 and 4" in capsys.readouterr().err
