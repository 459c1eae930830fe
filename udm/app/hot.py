"""Hot diffusion tab: pick data and a sampler, watch x_t and x̂_0 move from x_T to x_0."""

from __future__ import annotations

import time
from functools import lru_cache, partial

import gradio as gr
import torch
from PIL import Image

from .. import data, hot, process, viz
from .. import hot_pipeline as pipeline
from .common import (
    SAMPLING,
    Trajectory,
    choice,
    event,
    frame_index,
    frames,
    number,
    scrub_slider,
    session_state,
    whole,
)
from .gpu import on_gpu
from .words import explain

MAX_STEPS = 1000
TAB_MAX_SAMPLES = {"images": 64, "points": 2000}  # per request in the app: CPU-safe, and quick to draw
TAB_DEFAULT_SAMPLES = {"images": 16, "points": 500}
REFERENCE_POINTS = 1000


@lru_cache(maxsize=None)
def _reference(name: str) -> torch.Tensor | None:
    """Data drawn in grey behind 2-D samples."""
    return None if data.is_image(name) else data.points(name, REFERENCE_POINTS, seed=123)


def _picture(name: str, x: torch.Tensor, with_reference: bool = True) -> Image.Image:
    return viz.picture(x, reference=_reference(name) if with_reference else None, scale=4 if name == "mnist28" else 8)


def _request(dataset, model, sampler, steps, eta, seed, n) -> pipeline.HotRequest:
    dataset = choice(dataset, "dataset", data.DATASETS)
    cap = TAB_MAX_SAMPLES[data.kind(dataset)]
    sampler = choice(sampler, "sampler", hot.SAMPLERS)
    eta = number(eta, "η")  # read for every sampler, used by those that take η
    return pipeline.HotRequest(
        data=dataset,
        model=choice(model, "model", pipeline.MODELS),
        sampler=sampler,
        steps=whole(steps, "steps"),
        n=whole(n, "number of samples", 1, cap),
        seed=whole(seed, "seed"),
        eta=eta if process.get("hot").choice(dataset, sampler).eta else None,
    )


@event
def generate(dataset, model, sampler, steps, eta, seed, n, progress=gr.Progress()):
    """Stream (x_t, x̂_0, caption) while sampling; finish with the animation, samples and scrub range."""
    req = _request(dataset, model, sampler, steps, eta, seed, n)
    traj, start = Trajectory(render=partial(_picture, req.data)), time.perf_counter()
    for i, step, kept, shown in frames(pipeline.hot_plan(req).steps(), req.steps, progress):
        final = step.x_s
        if kept:
            x_t, x0_hat = pipeline.to_data(req.data, step.x_t), pipeline.to_data(req.data, step.x0_hat)
            traj.add(f"step {i + 1}/{req.steps}: t = {step.t}", x_t, x0_hat)
        if shown:
            label, xt, x0 = traj.picture(-1)
            yield xt, x0, label, gr.skip(), gr.skip(), gr.skip(), gr.skip()
    seconds = time.perf_counter() - start
    label, xt, x0 = traj.picture(-1)
    info = (
        f"{req.sampler}, {req.steps} steps, {req.n} samples, seed {req.seed}: {seconds:.2f} s, "
        f"{req.steps} network evaluations."
    )
    yield (
        xt,
        x0,
        info,
        _picture(req.data, pipeline.to_data(req.data, final)),
        traj.gif(),
        traj,
        scrub_slider(len(traj.frames)),
    )


@event
def scrub(traj: Trajectory | None, k):
    """Show kept frame k of the last run."""
    if traj is None or not traj.frames:
        raise gr.Error("run Generate first: there is no trajectory to scrub yet")
    label, xt, x0 = traj.picture(frame_index(k, len(traj.frames)))
    return xt, x0, label


@event
def forward_strip(dataset):
    """x_0 → x_T on one example (images) or a cloud (points), 8 frames."""
    dataset = choice(dataset, "dataset", data.DATASETS)
    ts, frames = pipeline.forward_strip(dataset, pipeline.hot_schedule(dataset))
    strip = viz.side_by_side(*[_picture(dataset, f, with_reference=False) for f in frames])
    return strip, "forward process x_0 → x_T at t = " + ", ".join(map(str, ts))


def _samples_slider(dataset):
    kind = data.kind(choice(dataset, "dataset", data.DATASETS))
    return gr.update(maximum=TAB_MAX_SAMPLES[kind], value=TAB_DEFAULT_SAMPLES[kind])


def build() -> gr.Blocks:
    with gr.Blocks() as tab:
        explain("hot")
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                dataset = gr.Dropdown(list(data.DATASETS), value="mnist28", label="dataset")
                model = gr.Radio(
                    list(pipeline.MODELS),
                    value="trained",
                    label="model",
                    info="exact: the closed-form ε* (gaussians8 only)",
                )
                sampler = gr.Dropdown(list(hot.SAMPLERS), value="ddim", label="sampler")
                steps = gr.Slider(1, MAX_STEPS, value=50, step=1, label="steps K")
                eta = gr.Slider(0, 1, value=0, step=0.05, label="η", info="ddim / analytic-ddim only")
                with gr.Row():
                    seed = gr.Number(0, precision=0, label="seed")
                    n = gr.Slider(
                        1, TAB_MAX_SAMPLES["images"], value=TAB_DEFAULT_SAMPLES["images"], step=1, label="samples"
                    )
                run = gr.Button("Generate", variant="primary")
            with gr.Column(scale=2):
                with gr.Row():
                    x_t = gr.Image(label="x_t", format="png", type="pil", interactive=False)
                    x0_hat = gr.Image(label="x̂_0 (the model's guess)", format="png", type="pil", interactive=False)
                caption = gr.Markdown()
                frame = gr.Slider(0, 1, value=0, step=1, label="scrub the trajectory", interactive=False)
                with gr.Row():
                    animation = gr.Image(label="animation: x_t | x̂_0", type="filepath", interactive=False)
                    samples = gr.Image(label="final samples", format="png", type="pil", interactive=False)
                strip = gr.Image(label="forward process", format="png", type="pil", interactive=False)
                strip_caption = gr.Markdown()
        traj = session_state()
        run.click(
            on_gpu(generate),
            [dataset, model, sampler, steps, eta, seed, n],
            [x_t, x0_hat, caption, samples, animation, traj, frame],
            api_name="hot_generate",
            **SAMPLING,
            preprocess=False,
        )  # raw values: our checks name the field at fault
        frame.release(scrub, [traj, frame], [x_t, x0_hat, caption], api_name="hot_scrub", preprocess=False)
        dataset.change(forward_strip, [dataset], [strip, strip_caption], api_name="hot_forward")
        dataset.change(_samples_slider, [dataset], [n], api_visibility="private")
        tab.load(forward_strip, [dataset], [strip, strip_caption], api_visibility="private")
    return tab
