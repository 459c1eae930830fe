"""Lab tab: compose a forward process from blocks, see x_0 → x_T at once, train its posterior live (loss
curve, previews, Stop), then sample it with every reverse rule that applies, side by side; download the
model and a snippet that rebuilds it."""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from .. import compare, core, lab, text, viz
from .. import lab_pipeline as lp
from . import mainthread
from .common import (
    SAMPLING,
    checked,
    choice,
    event,
    frame_index,
    number,
    player,
    scrub_slider,
    session_state,
    torch_threads,
    uploaded_picture,
    whole,
)
from .compare import Lockstep, table
from .gpu import on_gpu
from .words import explain

MAX_SECONDS = 300  # a visitor's run, at most (the library allows more headless)
PREVIEW_EVERY = 4.0  # seconds of training between preview samples
PREVIEW = {"points": 500, "images": 16, "words": 12}
TAB_MAX_SAMPLES = {"points": 2000, "images": 64, "words": 200}
SHOWN = 16
# One training run on this 2-core CPU at a time: other visitors wait in the queue (their place is shown)
# and sampling keeps its own two workers (udm.app.common.SAMPLING).
TRAINING = {"concurrency_id": "lab-training", "concurrency_limit": 1}
DEFAULT_BLOCKS = {"points": ["noise"], "images": ["blur", "noise"], "words": ["mask"]}
DATA_LABELS = {
    "gaussians8": "8 Gaussians (points)",
    "moons": "two moons (points)",
    "swissroll": "swiss roll (points)",
    "checkerboard": "checkerboard (points)",
    "drawing": "your drawing (points)",
    "digits8": "digits 8×8",
    "mnist14": "MNIST 14×14",
    "mnist28": "MNIST 28×28 (slow)",
    "en5": "English 5-letter words",
    "words": "your word list",
}
DEFAULT_WORDS = "\n".join(text.words("en5")[:50])
_running: dict[str, threading.Event] = {}  # session → its training run's stop flag
_lock = threading.Lock()


# ---------------------------------------------------------------- widget values → a spec
def _points(drawing) -> tuple[tuple[float, float], ...]:
    picture = uploaded_picture(drawing, "your drawing")
    if picture is None:
        raise gr.Error("draw a shape on the canvas first (points are taken from the ink)")
    g = np.asarray(picture.convert("L"), dtype=np.float32) / 255.0
    rgba = picture.convert("RGBA")
    alpha = np.asarray(rgba, dtype=np.float32)[..., 3] / 255.0
    ink = (1.0 - g) * alpha if alpha.min() < 1 else 1.0 - g  # dark strokes on a light or clear canvas
    return lab.points_from_ink(ink)


def _spec(name, blocks, T, schedule, sigma, drawing, words) -> lab.Spec:
    name = choice(name, "data", lab.LAB_DATA)
    if not isinstance(blocks, list) or not all(isinstance(b, str) for b in blocks):
        raise gr.Error(f"blocks must be a list of block names, got {blocks!r:.60}")
    order = [b for b in lab.BLOCKS if b in blocks and b != "noise"] + (["noise"] if "noise" in blocks else [])
    extra = [b for b in blocks if b not in lab.BLOCKS]
    T = None if T in (None, "", 0) else whole(T, "T")
    return lab.Spec(
        data=name,
        forward=tuple(order + extra),
        T=T,
        schedule=choice(schedule, "schedule", ("linear", "cosine")),
        sigma=number(sigma, "σ", 0.0, 1.0),
        words=lab.parse_words(words if isinstance(words, str) else "") if name == "words" else (),
        points=_points(drawing) if name == "drawing" else (),
    )


def _picture(spec: lab.Spec, x) -> viz.Image.Image:
    if isinstance(x, list):
        valid = text.word_set("en5") if spec.data == "en5" else frozenset(spec.words)
        return viz.words_picture(x[:SHOWN], valid=valid, ncol=2)
    x = x.float()
    if x.dim() == 4:
        return viz.picture(x[:SHOWN], scale={8: 8, 14: 5}.get(x.shape[-1], 3), ncol=4)
    ref = torch.tensor(spec.points) if spec.data == "drawing" else None
    return viz.scatter(x, reference=ref, size=240)


# ---------------------------------------------------------------- the strip and the rules, before training
def describe(spec: lab.Spec) -> str:
    why = lab.not_offered(spec)
    lines = [f"**{spec.name}**, T = {spec.steps_T}. Reverse rules that follow from F:"]
    lines += [f"- **{r}**: {lab.RULES_SOURCE[r]}" for r in lab.rules(spec)]
    if "ddim" in lab.rules(spec):
        lines.append("- (with noise alone the improved rule *is* DDIM: the run below shows it once)")
    if why:
        lines.append(f"- not offered: {', '.join(why)}: {next(iter(why.values()))}")
    return "\n".join(lines)


def _strip_picture(spec: lab.Spec) -> viz.Image.Image:
    ts, states = lab.strip(spec)
    if spec.kind == "words":
        cols = [viz.titled(viz.words_picture(w, ncol=1), f"t = {t}", below=True) for t, w in zip(ts, states)]
    elif spec.kind == "images":
        cols = [viz.titled(viz.picture(x, scale=84 // x.shape[-1]), f"t = {t}", below=True) for t, x in zip(ts, states)]
    else:
        cols = [viz.titled(viz.scatter(x, size=150), f"t = {t}", below=True) for t, x in zip(ts, states)]
    return viz.side_by_side(*cols, gap=4)


def strip(*values):
    """(x_0 → x_T picture, what applies): redrawn whenever the blocks change; a refusal is shown in place."""
    try:
        spec = _spec(*values)
    except (ValueError, gr.Error) as e:
        msg = e.message if isinstance(e, gr.Error) else str(e)
        return None, f"⚠ {msg}"
    return _strip_picture(spec), describe(spec)


def data_changed(name):
    """Only the blocks that apply to the data, a composition that shows it, and its inputs."""
    name = choice(name, "data", lab.LAB_DATA)
    kind = lab.kind_of(name)
    fits = [b for b in lab.BLOCKS if kind in lab.BLOCKS[b].kinds]
    return (
        gr.update(choices=fits, value=DEFAULT_BLOCKS[kind]),
        gr.update(visible=name == "drawing"),
        gr.update(visible=name == "words"),
        gr.update(visible=kind != "words"),
    )


# ---------------------------------------------------------------- live training
def _check_train(*values) -> None:
    _spec(*values[:7])
    whole(values[7], "seconds", 5, MAX_SECONDS)
    whole(values[8], "seed")


def _curve(history) -> object:
    import pandas as pd

    return pd.DataFrame([{"step": s, "loss": v} for s, _, v in history])


def _status(run: lp.Training, final: bool = False) -> str:
    loss = f"{run.smooth:.4f}" if run.smooth is not None else "—"
    head = "Trained" if final else "Training"
    return f"**{head}**: step {run.step} · {run.elapsed:.0f} s of {run.seconds:.0f} s · loss {loss}"


def _preview(run: lp.Training) -> viz.Image.Image:
    trained = run.trained(with_stats=False)
    T = lab.forward_of(run.spec).T
    steps = None if run.spec.kind == "words" else min(T, 20)
    plan = trained.plan("improved", PREVIEW[run.spec.kind], 0, steps)  # its steps on the main thread too
    x = lab.to_data(run.spec, core.last(mainthread.steps(plan.steps())).x_s)
    return viz.titled(_picture(run.spec, x), f"improved rule, step {run.step}", below=True)


def _training(status, curve, preview) -> tuple:
    """A message of a training run: its status, loss curve and preview; the other outputs stay."""
    return status, curve, preview, *[gr.skip()] * 5


def _slice(fn, seconds: float) -> float:
    """A slice of a run's training: on the main thread where it serves (after any waiting sampling step),
    else here on torch's own thread count (no other thread then runs torch on two)."""
    if mainthread.serving():
        return mainthread.call(fn, seconds, background=True)
    with torch_threads(0):
        return fn(seconds)


@event
def train(name, blocks, T, schedule, sigma, drawing, words, seconds, seed, request: gr.Request = None):
    """Stream (status, loss curve, preview, trained state, download, snippet) while the posterior trains."""
    spec = _spec(name, blocks, T, schedule, sigma, drawing, words)
    seconds, seed = whole(seconds, "seconds", 5, MAX_SECONDS), whole(seed, "seed")
    session = getattr(request, "session_hash", None) or "anonymous"
    stop = threading.Event()
    with _lock:
        if session in _running:
            raise gr.Error("a training run of yours is going: press Stop first")
        _running[session] = stop
    try:
        yield _training(f"building the network for {spec.name}…", None, None)
        run = lp.Training(spec, seconds=seconds, seed=seed)
        shown = -PREVIEW_EVERY
        for report in run.steps(stop, run=_slice):
            preview = gr.skip()
            if report.done or run.elapsed - shown >= PREVIEW_EVERY:
                shown, preview = run.elapsed, _preview(run)
            if not report.done:
                yield _training(_status(run), _curve(run.history), preview)
        yield _training("estimating the last statistics…", _curve(run.history), preview)
        trained = run.trained()  # here, not as one long job in the main thread's way
        fits = (
            gr.update(maximum=TAB_MAX_SAMPLES[spec.kind], value=min(TAB_MAX_SAMPLES[spec.kind], PREVIEW[spec.kind])),
            gr.update(visible=spec.kind != "words", maximum=lab.forward_of(spec).T),
        )
        yield (
            _status(run, final=True),
            _curve(run.history),
            preview,
            trained,
            _download(trained),
            lp.snippet(spec),
            *fits,
        )
    finally:
        with _lock:
            _running.pop(session, None)


def stop_training(request: gr.Request = None) -> str:
    session = getattr(request, "session_hash", None) or "anonymous"
    with _lock:
        flag = _running.get(session)
    if flag is None:
        return "nothing is training"
    flag.set()
    return "stopping…"


def _download(trained: lp.Trained) -> str:
    """The checkpoint folder (safetensors, config, spec, card, snippet) as one zip of its own."""
    folder = Path(tempfile.mkdtemp(prefix="udm-lab-"))
    trained.save(folder / "udm-lab")
    path = shutil.make_archive(str(folder / "udm-lab"), "zip", folder, "udm-lab")
    shutil.rmtree(folder / "udm-lab")
    return path


# ---------------------------------------------------------------- every rule, side by side
def _sample_request(trained, steps, n, seed) -> compare.Request:
    if trained is None:
        raise gr.Error("train a model first: compose the blocks, then press Train")
    spec = trained.spec
    rules = [r for r in lab.rules(spec) if r != "ddim"]  # (with noise alone, ddim is the improved rule)
    K = None if spec.kind == "words" else whole(steps, "steps", 1, lab.forward_of(spec).T)
    n = whole(n, "number of samples", 1, TAB_MAX_SAMPLES[spec.kind])
    entries = tuple(compare.Entry(r, steps=K) for r in rules)
    return compare.Request(lp.LabProcess(trained), spec.data, entries, n=n, seed=whole(seed, "seed"))


def _check_sample(trained, steps, n, seed) -> None:
    _sample_request(trained, steps, n, seed)


@event
def sample(trained, steps, n, seed, progress=gr.Progress()):
    """(frame picture, caption, finals picture, figures, animation, state, slider)."""
    req = _sample_request(trained, steps, n, seed)
    spec = trained.spec
    results = compare.run(req, progress=lambda f, s: progress(f, desc=s))
    play = Lockstep(results, lambda x: _picture(spec, x))
    finals = viz.side_by_side(*(viz.titled(_picture(spec, r.final), r.entry.name, below=True) for r in results))
    last = play.length - 1
    return play.titled(last), play.label(last), finals, table(results), play.gif(), play, scrub_slider(play.length)


@event
def scrub(play, p):
    if play is None:
        raise gr.Error("sample first: there is nothing to scrub yet")
    p = frame_index(p, play.length)
    return play.titled(p), play.label(p)


# ---------------------------------------------------------------- the tab
def example(name, blocks, T, schedule, sigma, seconds):
    """An example's settings: the data (and its inputs), its blocks among those that apply, the budget."""
    fits, drawing, words, _ = data_changed(name)
    t_box = gr.update(value=T, visible=lab.kind_of(name) != "words")
    return name, gr.update(choices=fits["choices"], value=blocks), drawing, words, t_box, schedule, sigma, seconds


EXAMPLES = [
    ("8 Gaussians · noise · 60 s", ("gaussians8", ["noise"], None, "linear", 0.0, 60)),
    ("digits · blur+noise · 3 min", ("digits8", ["blur", "noise"], None, "linear", 0.0, 180)),
    ("digits · blur, σ = 0 (naive collapses)", ("digits8", ["blur"], None, "linear", 0.0, 120)),
    ("50 words · mask · 2 min", ("words", ["mask"], None, "linear", 0.0, 120)),
]


def build() -> gr.Blocks:
    with gr.Blocks() as tab:
        explain("lab")
        with gr.Row():
            with gr.Column(scale=2, min_width=260):
                name = gr.Dropdown([(v, k) for k, v in DATA_LABELS.items()], value="gaussians8", label="data")
                blocks = gr.CheckboxGroup(
                    ["noise"], value=["noise"], label="forward blocks (in this order; noise last)"
                )
                with gr.Accordion("options: T, schedule, σ", open=False):
                    T = gr.Number(None, precision=0, label="T (empty: 1000 with noise, 50 without)")
                    schedule = gr.Radio(["linear", "cosine"], value="linear", label="noise schedule ᾱ_t")
                    sigma = gr.Slider(0, 1, value=0, step=0.05, label="σ: noise on deterministic blocks")
                drawing = gr.Sketchpad(
                    canvas_size=(280, 280),
                    layers=False,
                    brush=gr.Brush(colors=["#000000"], default_size=10, color_mode="fixed"),
                    label="draw a shape: its ink becomes the points",
                    visible=False,
                )
                words = gr.Textbox(
                    DEFAULT_WORDS,
                    lines=6,
                    max_lines=12,
                    label="your words (one per line, equal lengths, 20 or more)",
                    visible=False,
                )
            with gr.Column(scale=3, min_width=300):
                first, said = strip("gaussians8", ["noise"], None, "linear", 0.0, None, "")
                forward = gr.Image(
                    first,
                    label="x_0 → x_T: the forward process you composed",
                    type="pil",
                    format="png",
                    interactive=False,
                )
                rules = gr.Markdown(said)
        composed = [name, blocks, T, schedule, sigma, drawing, words]
        example_row = gr.Column()
        with gr.Row(equal_height=True):
            seconds = gr.Slider(5, MAX_SECONDS, value=60, step=5, label="training budget (seconds)")
            seed = gr.Number(0, precision=0, label="seed")
            go = gr.Button("Train", variant="primary")
            halt = gr.Button("Stop", variant="stop")
        status = gr.Markdown()
        with gr.Row():
            curve = gr.LinePlot(x="step", y="loss", label="training loss (smoothed)", height=260)
            preview = gr.Image(label="samples from the current weights", type="pil", format="png", interactive=False)
        trained = session_state()
        gr.Markdown("#### Sample it with every rule that applies (same x_T for all)")
        with gr.Row(equal_height=True):
            steps = gr.Number(50, precision=0, label="steps K (points, images)", minimum=1, maximum=1000)
            n = gr.Slider(1, 200, value=16, step=1, label="samples")
            sample_seed = gr.Number(0, precision=0, label="seed")
            run = gr.Button("Sample with every rule", variant="primary")
        frame = gr.Image(label="x_t | x̂_0 of every rule", type="pil", format="png", interactive=False)
        caption = gr.Markdown()
        slider = gr.Slider(0, 1, value=0, step=1, label="scrub all rules together", interactive=False)
        controls = gr.Column()
        finals = gr.Image(label="final samples of every rule", type="pil", format="png", interactive=False)
        figures = gr.Dataframe(
            label="figures", headers=["sampler", "network evaluations", "wall time (s)"], interactive=False, wrap=False
        )
        animation = gr.Image(label="animation (every rule in lockstep)", type="filepath")
        with gr.Accordion("Take it home: the model and the code", open=False):
            download = gr.File(label="the trained model (safetensors, config, spec, card, snippet)")
            snippet = gr.Code(language="python", label="rebuild it with udm")
        play = session_state()

        with example_row:
            gr.Markdown("**Examples** (they set the blocks and the budget; then press Train)")
            with gr.Row():
                buttons = [gr.Button(label, size="sm", variant="secondary", min_width=120) for label, _ in EXAMPLES]
        for b, (_, values) in zip(buttons, EXAMPLES):
            b.click(
                lambda v=values: example(*v), None, [name, blocks, drawing, words, T, schedule, sigma, seconds],
                api_visibility="private", queue=False,
            ).then(strip, composed, [forward, rules], api_visibility="private", preprocess=False)  # fmt: skip

        redraw = dict(api_visibility="private", preprocess=False, trigger_mode="always_last")
        name.input(data_changed, name, [blocks, drawing, words, T], api_visibility="private", queue=False).then(
            strip, composed, [forward, rules], **redraw
        )
        for widget in (blocks, T, schedule, sigma, words, drawing):
            widget.change(strip, composed, [forward, rules], **redraw)
        checked(
            go.click,
            _check_train,
            train,
            [*composed, seconds, seed],
            [status, curve, preview, trained, download, snippet, n, steps],
            api_name="lab_train",
            preprocess=False,
            **TRAINING,
        )
        halt.click(stop_training, None, status, api_name="lab_stop", queue=False)
        checked(
            run.click,
            _check_sample,
            on_gpu(sample),
            [trained, steps, n, sample_seed],
            [frame, caption, finals, figures, animation, play, slider],
            api_name="lab_sample",
            preprocess=False,
            **SAMPLING,
        )
        slider.release(scrub, [play, slider], [frame, caption], api_name="lab_scrub", preprocess=False)
        with controls:
            player(slider, play, scrub, [frame, caption], lambda p: p.length)
    return tab
