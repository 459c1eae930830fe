"""Hot diffusion tab: pick data and a sampler, watch x_t and x̂_0 move from x_T to x_0."""

from __future__ import annotations

import time
from functools import lru_cache, partial

import gradio as gr
import torch
from PIL import Image

from .. import data, hot, process, viz
from .. import hot_pipeline as pipeline
from ..pipeline import checkpoint_root
from .common import (
    SAMPLING,
    Trajectory,
    checked,
    choice,
    event,
    examples,
    frame_index,
    frames,
    number,
    player,
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


def _check(*values) -> None:
    _request(*values)


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
    samples = _picture(req.data, pipeline.to_data(req.data, final))
    if torch.equal(final, step.x0_hat):  # the last guess is the sample (every rule's step to s = 0): one picture
        x0 = samples
    info = (
        f"{req.sampler}, {req.steps} steps, {req.n} samples, seed {req.seed}: {seconds:.2f} s, "
        f"{req.steps} network evaluations."
    )
    yield (
        xt,
        x0,
        info,
        samples,
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


def _dataset_changed(dataset, model, n):
    """The controls that depend on the dataset: how many samples, and the exact model (gaussians8 only);
    a value that is still valid stays."""
    kind = data.kind(choice(dataset, "dataset", data.DATASETS))
    models, cap = _models(dataset), TAB_MAX_SAMPLES[kind]
    n = (
        n
        if isinstance(n, (int, float)) and n <= cap and (kind == "points") == (n > TAB_MAX_SAMPLES["images"])
        else None
    )
    return (
        gr.update(maximum=cap, value=n or TAB_DEFAULT_SAMPLES[kind]),
        gr.update(choices=models, value=model if model in models else "trained", interactive=len(models) > 1),
    )


def _n(dataset: str):
    """The samples slider of an example: its range for the dataset, at the default."""
    kind = data.kind(dataset)
    return gr.update(maximum=TAB_MAX_SAMPLES[kind], value=TAB_DEFAULT_SAMPLES[kind])


_exact = gr.update(choices=["trained", "exact"], value="exact", interactive=True)
_distilled = gr.update(choices=["trained", "distilled"], value="distilled", interactive=True)


def _models(dataset: str) -> list[str]:
    """The models a dataset has: the exact ε* exists for the true mixture only, a distilled student for
    MNIST when its checkpoint is there."""
    if dataset == "gaussians8":
        return ["trained", "exact"]
    if dataset in pipeline.DISTILLED and (checkpoint_root() / f"hot-{dataset}-distilled" / "config.json").is_file():
        return ["trained", "distilled"]
    return ["trained"]


DISTILLED_STEPS = 2  # where the student is set when picked: its best figure with its own rule (bench.pareto)


def _model_changed(dataset, model, sampler, steps):
    """Picking the distilled student moves to its few steps (the slider up to its most) and a rule it runs
    with; leaving it (its dataset's other model is the trained one), back to 50 steps of up to 1000."""
    if model == "distilled":
        return (
            gr.update(value=DISTILLED_STEPS, maximum=pipeline.distilled_steps(dataset)),
            gr.update(value=pipeline.distilled_rule(dataset))
            if not isinstance(sampler, str) or sampler.startswith("analytic")
            else gr.update(),
        )
    if model == "trained" and "distilled" in _models(dataset) and isinstance(steps, (int, float)):
        back = steps <= pipeline.distilled_steps(dataset)  # the student's few steps: the ε-model's 50
        return (gr.update(value=50, maximum=MAX_STEPS) if back else gr.update(maximum=MAX_STEPS)), gr.update()
    return gr.update(maximum=MAX_STEPS), gr.update()


def build() -> gr.Blocks:
    with gr.Blocks() as tab:
        explain("hot")
        tries = gr.Row()  # filled below, once the inputs exist
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                dataset = gr.Dropdown(list(data.DATASETS), value="mnist28", label="dataset")
                model = gr.Radio(
                    _models("mnist28"),
                    value="trained",
                    label="model",
                    info="gaussians8 also has the exact one (the mixture's closed-form ε*); MNIST a distilled "
                    "student for 1-20 steps",
                    interactive=len(_models("mnist28")) > 1,
                )
                sampler = gr.Dropdown(list(hot.SAMPLERS), value="analytic-ddpm", label="sampler")
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
                    x_t = gr.Image(label="xₜ (the state)", format="png", type="pil", interactive=False, min_width=120)
                    x0_hat = gr.Image(
                        label="x̂₀ (the model's guess)", format="png", type="pil", interactive=False, min_width=120
                    )
                caption = gr.Markdown()
                frame = gr.Slider(0, 1, value=0, step=1, label="scrub the trajectory", interactive=False)
                controls = gr.Column()  # play / pause / step, filled below
                animation = gr.Image(label="animation: xₜ | x̂₀", type="filepath", interactive=False)
                # the samples are the last frame's x̂₀: sent to API callers, not drawn a third time
                samples = gr.Image(label="final samples", format="png", type="pil", interactive=False, visible=False)
                strip = gr.Image(label="forward process", format="png", type="pil", interactive=False)
                strip_caption = gr.Markdown()
        traj = session_state()
        inputs = [dataset, model, sampler, steps, eta, seed, n]
        outputs = [x_t, x0_hat, caption, samples, animation, traj, frame]
        # raw values (preprocess=False): our checks name the field at fault
        checked(
            run.click, _check, on_gpu(generate), inputs, outputs, api_name="hot_generate", **SAMPLING, preprocess=False
        )
        with tries:
            examples(
                "Try",
                [
                    ("MNIST · DDPM, 50 steps", ("mnist28", "trained", "ddpm", 50, 0.0, 0, _n("mnist28"))),
                    (
                        "8 Gaussians · the exact posterior, 10 steps",
                        ("gaussians8", _exact, "ddim", 10, 0.0, 0, _n("gaussians8")),
                    ),
                    ("two moons · DDIM, only 10 steps", ("moons", "trained", "ddim", 10, 0.0, 0, _n("moons"))),
                    *(
                        [
                            (
                                "MNIST · the distilled student, only 2 steps",
                                ("mnist28", _distilled, "ddim", DISTILLED_STEPS, 0.0, 0, _n("mnist28")),
                            )
                        ]
                        if "distilled" in _models("mnist28")
                        else []
                    ),
                ],
                inputs,
                _check,
                on_gpu(generate),
                outputs,
                **SAMPLING,
                preprocess=False,
            )
        frame.release(scrub, [traj, frame], [x_t, x0_hat, caption], api_name="hot_scrub", preprocess=False)
        with controls:
            player(frame, traj, scrub, [x_t, x0_hat, caption], lambda t: len(t.frames))
        dataset.change(forward_strip, [dataset], [strip, strip_caption], api_name="hot_forward")
        dataset.change(_dataset_changed, [dataset, model, n], [n, model], api_visibility="private")
        model.input(_model_changed, [dataset, model, sampler, steps], [steps, sampler], api_visibility="private")
        tab.load(forward_strip, [dataset], [strip, strip_caption], api_visibility="private")
    return tab
