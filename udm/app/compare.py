"""Compare tab: two to four samplers of one process side by side from the same seed, played in lockstep
by one scrub slider, with a table of figures, wall time and network evaluations, and a quality-vs-steps
panel computed on demand (and cached)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

import gradio as gr
import torch

from .. import compare, data, text, viz
from .. import pipeline as hp
from .. import process as udm_process
from . import frontier, mainthread
from .common import (
    GIF_WIDTH,
    SAMPLING,
    STREAM_EVERY,
    choice,
    event,
    frame_index,
    number,
    player,
    scrub_slider,
    session_state,
    whole,
    write_gif,
)
from .gpu import on_gpu
from .words import explain

NONE = "—"
SLOTS = 4  # samplers the tab offers side by side
TAB_MAX_SAMPLES = 32
SWEEP_STEPS = (5, 10, 20, 50, 100)
SWEEP_MIN_SAMPLES = 16  # fewer digits give no Fréchet distance
SWEEP_MAX_SAMPLES = 256
# Images through a network per press (samples × network evaluations, all samplers): about 1 1/2 min
# (Run) and 3 min (the quality-vs-steps panel) of this 2-core CPU; larger requests are refused.
RUN_BUDGET = 32_000
SWEEP_BUDGET = 64_000
SWEEP_CACHE = 32  # quality-vs-steps results kept (a few numbers each)
SHOWN = 16  # images a picture shows
DEFAULTS = [("ddpm", 50), ("ddim", 50), ("analytic-ddim", 50), (NONE, 50)]


def _picture(process: str, name: str, x) -> viz.Image.Image | None:
    if x is None:
        return None
    if isinstance(x, list):
        return viz.words_picture(x[:SHOWN], valid=text.word_set(name), ncol=2)
    x = x.float()
    if x.dim() == 4 and x.shape[1] != 1:  # an image latent
        return viz.picture(viz.latent_images(x[:SHOWN]), scale=2, ncol=4)
    if x.dim() == 4:
        return viz.picture(x[:SHOWN], scale=2, ncol=4)
    return viz.scatter(x, reference=None, size=200)


def _kept(x):
    """What a session keeps of a frame for the scrub slider: the images a picture shows, as float16."""
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        return x[:SHOWN].half()
    return x


def _frame(picture: Callable, frame) -> viz.Image.Image:
    t, x_t, x0 = frame
    pics = [p for p in (picture(x_t), picture(x0)) if p is not None]
    return viz.side_by_side(*pics)


def _entries(process, name, slots) -> tuple[compare.Entry, ...]:
    """The chosen slots as entries; the request checks them (steps and η are kept only where they apply)."""
    runs = udm_process.get(process)
    out = []
    for k, (sampler, steps, eta) in enumerate(slots):
        # every slot's numbers are read, used or not: a malformed request is refused, not half-read
        steps, eta = whole(steps, f"steps of sampler {k + 1}"), number(eta, f"η of sampler {k + 1}")
        if sampler in (None, "", NONE):
            continue
        try:
            c = runs.choice(name, sampler)
        except ValueError as e:
            raise gr.Error(f"sampler {k + 1}: {e}") from None
        out.append(compare.Entry(sampler, steps if c.steps else None, eta if c.eta else None))
    if not out:
        raise gr.Error("choose at least one sampler")
    return tuple(out)


def _request(process, name, slots, seed, n, lo=1, cap=TAB_MAX_SAMPLES) -> compare.Request:
    process = choice(process, "process", compare.processes())
    name = choice(name, "data", compare.datasets(process))
    n = whole(n, "number of samples", lo, cap)
    return compare.Request(process, name, _entries(process, name, slots), n=n, seed=whole(seed, "seed"))


def _within_budget(cost: int, budget: int, what: str) -> None:
    if cost > budget:
        raise gr.Error(
            f"{what} would put {cost:,} images through the network (samples × network evaluations, all "
            f"samplers); at most {budget:,} per request on this server: use fewer samples, steps or samplers"
        )


def _slots(args) -> list[tuple]:
    return [tuple(args[3 * k : 3 * k + 3]) for k in range(SLOTS)]


def _fmt(v: float) -> str:
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"


def table(results: list[compare.Result]):
    keys = sorted({k for r in results for k in r.figures})
    rows = []
    for r in results:
        shared = f" (batch of {r.batched_with})" if r.batched_with > 1 else ""
        rows.append(
            [
                r.entry.label,
                r.evaluations,
                f"{r.seconds:.2f}{shared}",
                *(_fmt(r.figures[k]) if k in r.figures else "—" for k in keys),
            ]
        )
    import pandas as pd

    return pd.DataFrame(rows, columns=["sampler", "network evaluations", "wall time (s)", *keys])


class Lockstep:
    """The runs' frames played together: frame p of F shows each run at the same share of its way;
    `picture` draws one state (data space) of a run."""

    def __init__(self, results: list[compare.Result], picture: Callable):
        self.picture, self.results = picture, results
        for r in results:
            r.frames = [(t, _kept(a), _kept(b)) for t, a, b in r.frames]
        self.length = max(len(r.frames) for r in results)

    def frame(self, p: int) -> list:
        out = []
        for r in self.results:
            i = round(p * (len(r.frames) - 1) / max(1, self.length - 1))
            out.append(_frame(self.picture, r.frames[i]))
        return out

    def titled(self, p: int, width: int | None = None) -> viz.Image.Image:
        """Frame p of every run in one picture, each titled with its sampler and t (each run's pictures at
        most `width` wide)."""
        pics = zip(self.frame(p), self.results, self.ts(p))
        shrink = (lambda f: viz.shrink(f, width)) if width else (lambda f: f)  # noqa: E731
        return viz.side_by_side(*(viz.titled(shrink(f), f"{r.entry.name}: t = {t}", below=True) for f, r, t in pics))

    def gif(self) -> str:
        """The animation: every other frame (and the last), digits at full size: a few MB at the defaults."""
        kept = sorted({*range(0, self.length, 2), self.length - 1})
        return write_gif([self.titled(p, GIF_WIDTH) for p in kept])

    def ts(self, p: int) -> list[int]:
        """Each run's t at frame p."""
        return [r.frames[round(p * (len(r.frames) - 1) / max(1, self.length - 1))][0] for r in self.results]

    def label(self, p: int) -> str:
        parts = []
        for r in self.results:
            i = round(p * (len(r.frames) - 1) / max(1, self.length - 1))
            parts.append(f"{r.entry.name}: t = {r.frames[i][0]}")
        return f"frame {p + 1}/{self.length} — " + ", ".join(parts)


def _images(pics: list) -> list:
    return pics + [None] * (SLOTS - len(pics))


def _labels(results) -> list:
    return [gr.update(label=r.entry.label, visible=True) for r in results] + [gr.update(visible=False)] * (
        SLOTS - len(results)
    )


@event
def run(process, name, *args, progress=gr.Progress()):
    """Stream each sampler's frames as they come (the last run's samples, table and animation stay until
    the new ones are ready); then (4 frame pictures, caption, 4 final pictures, table, GIF, state, slider)."""
    *slot_args, seed, n = args
    req = _request(process, name, _slots(slot_args), seed, n)
    _within_budget(compare.image_cost(req), RUN_BUDGET, "this comparison")
    start, shown = time.perf_counter(), 0.0
    picture = lambda x: _picture(req.process, req.data, x)  # noqa: E731
    keep = [gr.skip()] * (SLOTS + 4)  # the finals, table, animation, state and slider of the last run
    for update in mainthread.steps(compare.stream(req)):
        progress(update.fraction, desc=update.what)
        if update.new_frames and not update.done and time.perf_counter() - shown > STREAM_EVERY:
            shown = time.perf_counter()
            frames = [gr.skip()] * SLOTS
            for i in update.new_frames:
                r = update.results[i]
                frames[i] = gr.update(value=_frame(picture, r.frames[-1]), label=r.entry.label, visible=True)
            yield *frames, f"running: {update.what}", *keep
    total, results = time.perf_counter() - start, update.results
    play = Lockstep(results, picture)
    finals = [_picture(req.process, req.data, r.final) for r in results]
    caption = play.label(play.length - 1) + f" · whole comparison {total:.2f} s"
    yield (
        *[gr.update(value=p, **u) for p, u in zip(_images(play.frame(play.length - 1)), _labels(results))],
        caption,
        *[gr.update(value=p, **u) for p, u in zip(_images(finals), _labels(results))],
        table(results),
        play.gif(),
        play,
        scrub_slider(play.length),
    )


@event
def scrub(play: Lockstep | None, p):
    if play is None:
        raise gr.Error("run a comparison first: there is nothing to scrub yet")
    p = frame_index(p, play.length)
    return (*_images(play.frame(p)), play.label(p))


# ---------------------------------------------------------------- quality against the number of steps
def metric(process: str, name: str) -> str:
    kind = udm_process.get(process).kind(name)
    return {"words": "valid", "points": "sliced_wasserstein"}.get(kind, "frechet")


_sweep_cache: OrderedDict[tuple, tuple] = OrderedDict()  # (request at one K) → rows; least recent goes first
_sweep_lock = threading.Lock()  # two workers may sweep at once


def _sweep_point(req: compare.Request, progress: Callable[[float, str], None]) -> tuple:
    """(name, K, figures, seconds) of each sampler at one K, computed once per request and then cached."""
    key = (req, str(hp.checkpoint_root()))
    with _sweep_lock:
        if key in _sweep_cache:
            _sweep_cache.move_to_end(key)
            return _sweep_cache[key]
    rows = tuple((r.entry.name, r.entry.steps, r.figures, r.seconds) for r in compare.run(req, progress=progress))
    with _sweep_lock:
        _sweep_cache[key] = rows
        while len(_sweep_cache) > SWEEP_CACHE:
            _sweep_cache.popitem(last=False)
    return rows


@event
def sweep(process, name, *args, progress=gr.Progress()):
    """Quality against K ∈ {5, 10, 20, 50, 100} for the chosen samplers: a plot and a table (cached)."""
    *slot_args, seed, n = args
    req = _request(process, name, _slots(slot_args), seed, n, lo=SWEEP_MIN_SAMPLES, cap=SWEEP_MAX_SAMPLES)
    if not all(c.steps for c in req.choices()):
        raise gr.Error("quality against steps is for samplers with a step count (hot diffusion, encoding)")
    entries = tuple(dict.fromkeys(replace(e, steps=1) for e in req.entries))  # one per sampler and η
    points = [replace(req, entries=tuple(replace(e, steps=k) for e in entries)) for k in SWEEP_STEPS]
    _within_budget(sum(compare.image_cost(p) for p in points), SWEEP_BUDGET, "this quality-vs-steps panel")
    work = [sum(e.steps for e in p.entries) for p in points]  # the progress bar moves with steps done
    progress(0, desc="starting")
    rows = []
    for i, point in enumerate(points):
        before, share = sum(work[:i]) / sum(work), work[i] / sum(work)
        rows += _sweep_point(
            point, lambda f, desc, b=before, w=share, k=SWEEP_STEPS[i]: progress(b + w * f, desc=f"K = {k}: {desc}")
        )
    key = metric(req.process, req.data)
    import pandas as pd

    frame = pd.DataFrame([{"sampler": s, "steps": k, key: float(f.get(key, float("nan")))} for s, k, f, _ in rows])
    keys = sorted({k for _, _, f, _ in rows for k in f})
    tab = pd.DataFrame(
        [[s, k, *(_fmt(f[x]) if x in f else "—" for x in keys), f"{sec:.2f}"] for s, k, f, sec in rows],
        columns=["sampler", "steps", *keys, "wall time (s)"],
    )
    lower = "lower is better" if key != "valid" else "higher is better"
    return gr.update(value=frame, y=key, title=f"{key} against steps ({lower}), {req.n} samples"), tab


def _process_changed(process):
    """The datasets and samplers of the chosen process: only valid choices are offered."""
    process = choice(process, "process", compare.processes())
    names = compare.datasets(process)
    default = "mnist28" if "mnist28" in names else names[0]
    valid = compare.samplers(process, default)
    picks = [s for s, _ in DEFAULTS if s in valid] if process == "hot" else list(valid[:2])
    picks = (picks + [NONE] * SLOTS)[:SLOTS]
    return (
        gr.update(choices=list(names), value=default),
        *[gr.update(choices=[NONE, *valid], value=p) for p in picks],
    )


def build() -> gr.Blocks:
    with gr.Blocks() as tab:
        explain("compare")
        with gr.Row():
            process = gr.Dropdown(list(compare.processes()), value="hot", label="process")
            name = gr.Dropdown(list(data.DATASETS), value="mnist28", label="data")
            seed = gr.Number(0, precision=0, label="seed")
            n = gr.Slider(1, TAB_MAX_SAMPLES, value=16, step=1, label="samples")
        slot_inputs = []
        with gr.Row():
            for k, (s, steps) in enumerate(DEFAULTS):
                with gr.Column(min_width=180):
                    choices = [NONE, *compare.samplers("hot", "mnist28")]
                    sampler = gr.Dropdown(choices, value=s, label=f"sampler {k + 1}")
                    k_steps = gr.Number(steps, precision=0, label="steps K", minimum=1, maximum=1000)
                    eta = gr.Slider(0, 1, value=0, step=0.05, label="η (DDIM types)")
                slot_inputs += [sampler, k_steps, eta]
        go = gr.Button("Run side by side", variant="primary")
        with gr.Row():
            frames = [
                gr.Image(label=f"sampler {k + 1}: x_t | x̂_0", type="pil", format="png", interactive=False)
                for k in range(SLOTS)
            ]
        caption = gr.Markdown()
        frame = gr.Slider(0, 1, value=0, step=1, label="scrub all trajectories together", interactive=False)
        controls = gr.Column()  # play / pause / step, filled below
        with gr.Row():
            finals = [
                gr.Image(label=f"sampler {k + 1}: samples", type="pil", format="png", interactive=False)
                for k in range(SLOTS)
            ]
        figures = gr.Dataframe(
            label="figures", headers=["sampler", "network evaluations", "wall time (s)"], interactive=False, wrap=False
        )
        animation = gr.Image(label="animation (all samplers in lockstep)", type="filepath")
        gr.Markdown("#### Quality against the number of steps (K = 5, 10, 20, 50, 100; computed once, then cached)")
        with gr.Row():
            sweep_n = gr.Slider(SWEEP_MIN_SAMPLES, SWEEP_MAX_SAMPLES, value=64, step=16, label="samples per point")
            sweep_go = gr.Button("Compute quality vs steps")
        plot = gr.LinePlot(x="steps", y="frechet", color="sampler", label="quality vs steps")
        sweep_table = gr.Dataframe(
            label="quality vs steps", headers=["sampler", "steps", "figures", "wall time (s)"], interactive=False
        )
        frontier.build()
        play = session_state()
        go.click(
            on_gpu(run),
            [process, name, *slot_inputs, seed, n],
            [*frames, caption, *finals, figures, animation, play, frame],
            api_name="compare_run",
            **SAMPLING,
            preprocess=False,
            show_progress_on=caption,  # one progress bar per run
        )
        frame.release(scrub, [play, frame], [*frames, caption], api_name="compare_scrub", preprocess=False)
        with controls:
            player(frame, play, scrub, [*frames, caption], lambda p: p.length)
        sweep_go.click(
            on_gpu(sweep),
            [process, name, *slot_inputs, seed, sweep_n],
            [plot, sweep_table],
            api_name="compare_sweep",
            **SAMPLING,
            preprocess=False,
        )
        process.change(_process_changed, [process], [name, *slot_inputs[0::3]], api_visibility="private")
    return tab
