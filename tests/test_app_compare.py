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


def test_quality_vs_steps_is_computed_once_then_cached(client, monkeypatch):
    from udm import compare
    from udm.app.compare import _sweep_cache

    _sweep_cache.clear()
    calls = []
    run = compare.run
    monkeypatch.setattr(compare, "run", lambda req, *a, **k: calls.append(req) or run(req, *a, **k))
    args = ("hot", "moons", *slots(("ddim", 5), ("ddpm", 5)), 0, 16)
    plot, table = client.predict(*args, api_name="/compare_sweep")
    assert len(table["data"]) == 10 and {int(r[1]) for r in table["data"]} == {5, 10, 20, 50, 100}
    assert [len(r.entries) for r in calls] == [2] * 5  # both samplers together, once per K
    _, again = client.predict(*args, api_name="/compare_sweep")
    assert len(calls) == 5 and again["data"] == table["data"]


def test_quality_vs_steps_keeps_samplers_apart_by_eta(client):
    args = ("hot", "moons", "ddim", 5, 0.0, "ddim", 5, 1.0, NONE, 5, 0.0, NONE, 5, 0.0, 0, 16)
    _, table = client.predict(*args, api_name="/compare_sweep")
    assert {r[0] for r in table["data"]} == {"ddim", "ddim, η = 1"} and len(table["data"]) == 10


@pytest.mark.parametrize(
    "args,match",
    [
        (("hot", "moons", *slots(), 0, 8), "choose at least one sampler"),
        (("warm", "moons", *slots(("ddim", 5)), 0, 8), "unknown process"),
        (("hot", "moons", *slots(("ddim", 0)), 0, 8), r"sampler 1 \(ddim\) needs a number of steps"),
        (("hot", "moons", *slots(("plms", 5)), 0, 8), "sampler 1: unknown sampler"),
        (("hot", "moons", *slots(("ddim", 5)), 0, 99), "number of samples"),
        (("mask", "en5", *slots(("naive", 5)), -1, 8), "seed"),
    ],
)
def test_compare_bad_input(client, args, match):
    with pytest.raises(AppError, match=match):
        client.predict(*args, api_name="/compare_run")


def test_sweep_refuses_processes_without_steps(client):
    with pytest.raises(AppError, match="step count"):
        client.predict("mask", "en5", *slots(("naive", 5)), 0, 16, api_name="/compare_sweep")


@pytest.mark.parametrize(
    "api,args,match",
    [
        ("/compare_sweep", ("hot", "moons", *slots(("ddim", 5)), 0, 8), "between 16 and 256"),
        (
            "/compare_sweep",
            ("hot", "mnist28", *slots(("ddpm", 5), ("ddim", 5), ("analytic-ddpm", 5)), 0, 128),
            "64,000",
        ),
        ("/compare_run", ("hot", "mnist28", *slots(*[("ddpm", 1000)] * 2), 0, 32), "at most 32,000"),
        ("/compare_run", ("encoding", "mnist28", *slots(("ddim", 1000)), 0, 32), "63,968 images"),
        ("/compare_run", ("hot", "moons", *slots(("ddim", 5))[:8], 10**400, *slots()[9:], 0, 8), "η of sampler 3"),
    ],
)
def test_compare_limits(client, api, args, match):
    with pytest.raises(AppError, match=match):
        client.predict(*args, api_name=api)


def test_sweep_answers_a_library_refusal_with_its_message(client, monkeypatch):
    from udm import compare
    from udm.app.compare import _sweep_cache

    def refuse(*a, **k):
        raise ValueError("no checkpoint for that")

    monkeypatch.setattr(compare, "run", refuse)
    _sweep_cache.clear()
    with pytest.raises(AppError, match="no checkpoint for that"):
        client.predict("hot", "moons", *slots(("ddim", 5)), 0, 16, api_name="/compare_sweep")


def test_unused_steps_of_a_text_sampler_are_not_held_against_it(client):
    out = client.predict("mask", "en5", "naive", 500, 0.0, *slots()[3:], 0, 4, api_name="/compare_run")
    assert len(out[9]["data"]) == 1
    with pytest.raises(AppError, match="between 1 and 100"):
        client.predict("mask", "en5", "diffusers-amused", 500, 0.0, *slots()[3:], 0, 4, api_name="/compare_run")


def test_measured_frontier_says_when_it_was_not_measured(client):
    chart, table, note = client.predict("digits (hot diffusion, MNIST)", api_name="/compare_frontier")
    assert chart is None and "python -m bench.pareto" in note
    with pytest.raises(AppError, match="unknown view"):
        client.predict("cats", api_name="/compare_frontier")
