"""Hot diffusion tab: pick data and a sampler, watch x_t and x̂_0 move from x_T to x_0."""

from __future__ import annotations

import time

import gradio as gr
import torch

from .. import data, hot, pipeline, viz
from .common import Trajectory, choice, kept_indices, number, whole

INTRO = """### Hot diffusion — x_t = ᾱ_t x_0 + β̄_t ε
Each reverse step guesses x̂_0 from x_t with the trained ε-model, then moves to x_s with the general
step x_s = ᾱ_s x̂_0 + √(β̄_s² − σ_t²)·(x_t − ᾱ_t x̂_0)/β̄_t + σ_t ε. **DDPM** takes σ_t = β̄_s β_{t|s}/β̄_t,
**DDIM** σ_t = η·that (η = 0: deterministic), **Analytic-DPM** also samples x̂_0 with the optimal
variance σ̄_t² = (β̄_t/ᾱ_t)²(1 − E‖ε_θ‖²/d). Fewer steps skip timesteps."""
MAX_STEPS = 1000
REFERENCE_POINTS = 1000


def _picture(name: str, x: torch.Tensor, reference: torch.Tensor | None) -> "viz.Image.Image":
    return viz.picture(x, reference=reference, scale=4 if name == "mnist28" else 8)


def _request(dataset, model, sampler, steps, eta, seed, n) -> pipeline.HotRequest:
    dataset = choice(dataset, "dataset", data.DATASETS)
    cap = pipeline.MAX_SAMPLES["images" if data.is_image(dataset) else "points"]
    sampler = choice(sampler, "sampler", hot.SAMPLERS)
    try:
        return pipeline.HotRequest(
            data=dataset, model=choice(model, "model", pipeline.MODELS), sampler=sampler,
            steps=whole(steps, "steps", 1, MAX_STEPS), n=whole(n, "number of samples", 1, cap),
            seed=whole(seed, "seed", 0, 2**31 - 1),
            eta=None if sampler.endswith("ddpm") else number(eta, "eta", 0.0, 1.0))
    except ValueError as e:
        raise gr.Error(str(e)) from None


def generate(dataset, model, sampler, steps, eta, seed, n, progress=gr.Progress()):
    """Stream (x_t, x̂_0, caption) while sampling; finish with the animation, samples and scrub range."""
    req = _request(dataset, model, sampler, steps, eta, seed, n)
    ref = None if data.is_image(req.data) else data.points(req.data, REFERENCE_POINTS, seed=123)
    keep, traj = kept_indices(req.steps), Trajectory()
    start, last_yield = time.perf_counter(), 0.0
    try:
        steps_iter = pipeline.hot_steps(req)
    except (ValueError, FileNotFoundError) as e:
        raise gr.Error(str(e)) from None
    final = None
    for step in steps_iter:
        progress((step.index + 1) / req.steps, desc=f"t = {step.t} → {step.s}")
        final = step.x_s
        now = time.perf_counter()
        if step.index in keep or step.index == 0:
            xt = _picture(req.data, pipeline.to_data(req.data, step.x_t), ref)
            x0 = _picture(req.data, pipeline.to_data(req.data, step.x0_hat), ref)
            traj.add(f"step {step.index + 1}/{req.steps}: t = {step.t}", xt, x0)
            if step.index == 0 or now - last_yield > 0.1:  # stream at most ~10 frames a second
                last_yield = now
                yield xt, x0, f"step {step.index + 1}/{req.steps}: t = {step.t}", gr.skip(), gr.skip(), gr.skip(), gr.skip()
    seconds = time.perf_counter() - start
    samples = _picture(req.data, pipeline.to_data(req.data, final), ref)
    label, xt, x0 = traj.frames[-1]
    info = (f"{req.sampler}, {req.steps} steps, {req.n} samples, seed {req.seed}: {seconds:.2f} s, "
            f"{req.steps} network evaluations.")
    yield (xt, x0, info, samples, traj.gif(), traj,
           gr.update(minimum=0, maximum=len(traj.frames) - 1, value=len(traj.frames) - 1, interactive=True))


def scrub(traj: Trajectory | None, k):
    """Show kept frame k of the last run."""
    if traj is None or not traj.frames:
        raise gr.Error("run Generate first: there is no trajectory to scrub yet")
    label, xt, x0 = traj.frames[whole(k, "frame", 0, len(traj.frames) - 1)]
    return xt, x0, label


def forward_strip(dataset):
    """x_0 → x_T on one example (images) or a cloud (points), 8 frames."""
    dataset = choice(dataset, "dataset", data.DATASETS)
    try:
        schedule = pipeline.hot_model(dataset, "trained" if dataset != "gaussians8" else "exact").schedule
    except FileNotFoundError as e:
        raise gr.Error(str(e)) from None
    ts, frames = pipeline.forward_strip(dataset, schedule)
    strip = viz.side_by_side(*[_picture(dataset, f, None) for f in frames])
    return strip, "forward process x_0 → x_T at t = " + ", ".join(map(str, ts))


def build() -> gr.Blocks:
    with gr.Blocks() as tab:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                dataset = gr.Dropdown(list(data.DATASETS), value="mnist28", label="dataset")
                model = gr.Radio(list(pipeline.MODELS), value="trained", label="model",
                                 info="exact: the closed-form ε* (gaussians8 only)")
                sampler = gr.Dropdown(list(hot.SAMPLERS), value="ddim", label="sampler")
                steps = gr.Slider(1, MAX_STEPS, value=50, step=1, label="steps K")
                eta = gr.Slider(0, 1, value=0, step=0.05, label="η", info="ddim / analytic-ddim only")
                with gr.Row():
                    seed = gr.Number(0, precision=0, label="seed")
                    n = gr.Slider(1, 64, value=16, step=1, label="samples")
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
        traj = gr.State(None)
        run.click(generate, [dataset, model, sampler, steps, eta, seed, n],
                  [x_t, x0_hat, caption, samples, animation, traj, frame], api_name="hot_generate",
                  concurrency_limit=2, preprocess=False)  # raw values: our checks name the field at fault
        frame.release(scrub, [traj, frame], [x_t, x0_hat, caption], api_name="hot_scrub", preprocess=False)
        dataset.change(forward_strip, [dataset], [strip, strip_caption], api_name="hot_forward")
        tab.load(forward_strip, [dataset], [strip, strip_caption], api_visibility="private")
    return tab
