"""The Compare tab through gradio_client, on tiny checkpoints."""

import pytest
from gradio_client.exceptions import AppError
from PIL import Image

NONE = "—"


def slots(*pairs):
    """(sampler, steps, η) × 4, unused slots empty."""
    out = []
    for s, k in list(pairs) + [(NONE, 5)] * (4 - len(pairs)):
        out += [s, k, 0.0]
    return out


def img(x):
    """An image output sent as an update (value + label) or as a plain path."""
    x = x.get("value") if isinstance(x, dict) else x
    return Image.open(x) if x else None


def test_compare_endpoints_are_named(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/compare_run", "/compare_scrub", "/compare_sweep"} <= names


def test_compare_run_side_by_side(client):
    out = client.predict(
        "hot", "moons", *slots(("ddpm", 5), ("diffusers-dpm-solver++", 3)), 0, 8, api_name="/compare_run"
    )
    frames, caption, finals, table, gif = out[:4], out[4], out[5:9], out[9], out[10]
    assert all(img(f).size[0] > 0 for f in frames[:2]) and img(frames[2]) is None
    assert all(img(f).size[0] > 0 for f in finals[:2])
    rows = table["data"]
    assert [r[0] for r in rows] == ["ddpm, 5 steps", "diffusers-dpm-solver++, 3 steps"]
    assert [int(r[1]) for r in rows] == [5, 3] and "sliced_wasserstein" in table["headers"]
    assert Image.open(gif).is_animated and "frame 5/5" in caption


def test_compare_scrub_moves_all_samplers(client):
    client.predict("hot", "moons", *slots(("ddpm", 5), ("ddim", 5)), 1, 8, api_name="/compare_run")
    first, last = client.predict(0, api_name="/compare_scrub"), client.predict(4, api_name="/compare_scrub")
    assert "frame 1/5" in first[4] and "ddpm: t = 1000" in first[4]
    assert img(first[0]).tobytes() != img(last[0]).tobytes()


@pytest.mark.parametrize(
    "process,name,pairs",
    [
        ("mask", "en5", (("improved", 5), ("diffusers-amused", 3))),
        ("edit", "zh4", (("naive", 5),)),
        ("cold", "mnist28", (("blur σ=0 naive", 5), ("blur σ=0 improved", 5))),
        ("encoding", "en5", (("ddim", 3),)),
    ],
)
def test_compare_other_processes(client, process, name, pairs):
    out = client.predict(process, name, *slots(*pairs), 0, 4, api_name="/compare_run")
    assert len(out[9]["data"]) == len(pairs) and img(out[5]).size[0] > 0


def test_quality_vs_steps_is_cached(client):
    import time

    args = ("hot", "moons", *slots(("ddim", 5), ("ddpm", 5)), 0, 8)
    start = time.perf_counter()
    plot, table = client.predict(*args, api_name="/compare_sweep")
    first = time.perf_counter() - start
    assert len(table["data"]) == 10 and {int(r[1]) for r in table["data"]} == {5, 10, 20, 50, 100}
    start = time.perf_counter()
    client.predict(*args, api_name="/compare_sweep")
    assert time.perf_counter() - start < max(0.5, first)


@pytest.mark.parametrize(
    "args,match",
    [
        (("hot", "moons", *slots(), 0, 8), "choose at least one sampler"),
        (("warm", "moons", *slots(("ddim", 5)), 0, 8), "unknown process"),
        (("hot", "moons", *slots(("ddim", 0)), 0, 8), "steps of sampler 1"),
        (("hot", "moons", *slots(("plms", 5)), 0, 8), "unknown sampler 1"),
        (("hot", "moons", *slots(("ddim", 5)), 0, 99), "number of samples"),
        (("mask", "en5", *slots(("naive", 5)), -1, 8), "seed"),
    ],
)
def test_compare_bad_input(client, args, match):
    with pytest.raises(AppError, match=match):
        client.predict(*args, api_name="/compare_run")


def test_sweep_refuses_processes_without_steps(client):
    with pytest.raises(AppError, match="step count"):
        client.predict("mask", "en5", *slots(("naive", 5)), 0, 8, api_name="/compare_sweep")
