"""Encoding tab: Gaussian diffusion in the latent of a learned encoder F, for MNIST digits and en5 words.
Generate from pure noise (the latent beside the decoded x̂_0 at every step), or send held-out examples
through encode → noise to t → decode to see how much of x_0 survives at each t."""

from __future__ import annotations

import json
import time
from functools import lru_cache

import gradio as gr
import torch

from .. import checkpoint, encoding, judge, process, text, viz
from .. import encoding_pipeline as ep
from ..data import ENCODING as ENCODING_DATA
from ..data import digit_from_picture, to_model
from ..judge import word_scores
from ..pipeline import checkpoint_root
from .common import (
    SAMPLING,
    Trajectory,
    checked,
    choice,
    digit_pad,
    event,
    examples,
    frame_index,
    frames,
    number,
    player,
    scrub_slider,
    session_state,
    uploaded_picture,
    whole,
)
from .gpu import on_gpu
from .words import explain

TAB_MAX_SAMPLES = 32
ROUND_TRIP_N = 8  # held-out examples per round trip
MAX_LEVELS = 10  # values of t per round trip


def _render(name: str):
    if not ep.is_words(name):

        def picture(x: torch.Tensor):
            return viz.picture(viz.latent_images(x) if x.shape[1] != 1 else x, scale=3)

        return picture
    full, held = text.word_set(name), text.word_set(name, "test")
    vocab, proj = text.vocab(name), ep.projection(name)

    def words_or_path(x: torch.Tensor):
        if x.dim() == 3:  # (steps so far, l, 2): the projected path of the first sample
            return viz.latent_paths(x.numpy(), anchors=proj.anchors, labels=[])
        return viz.words_picture(vocab.decode(x.round().long()), valid=full - held, novel=held)

    return words_or_path


def _request(name, sampler, steps, eta, temperature, seed, n) -> ep.EncodingRequest:
    name = choice(name, "data", ENCODING_DATA)
    sampler = choice(sampler, "sampler", encoding.SAMPLERS)
    # read for every sampler and data set, used by DDIM (η) and by words (temperature)
    eta, temperature = number(eta, "η"), number(temperature, "temperature")
    return ep.EncodingRequest(
        data=name,
        sampler=sampler,
        steps=whole(steps, "steps"),
        n=whole(n, "number of samples", 1, TAB_MAX_SAMPLES),
        seed=whole(seed, "seed"),
        eta=eta if process.get("encoding").choice(name, sampler).eta else None,
        temperature=temperature if ep.is_words(name) else 0.0,
    )


def figures(name: str, final: torch.Tensor) -> str:
    """The judge's figures for final samples in model space."""
    if ep.is_words(name):
        s = word_scores(name, ep.decode(name, final))
        return f"valid {s['valid']:.0%}, novel-valid {s['novel_valid']:.0%}, distinct {s['distinct']:.0%}"
    d = judge.diversity(ep.decode(name, final))
    return f"{int(d['distinct'])} distinct of {len(final)}, mean pairwise L1 {d['pairwise']:.3f}"


def _check(*values) -> None:
    _request(*values)


@event
def run(name, sampler, steps, eta, temperature, seed, n, progress=gr.Progress()):
    """Stream (latent, x̂_0, caption), then the samples, the figures, the GIF and the scrub state."""
    req = _request(name, sampler, steps, eta, temperature, seed, n)
    records = ep.encoding_plan(req).steps()
    render = _render(req.data)
    words = ep.is_words(req.data)
    proj = ep.projection(req.data) if words else None
    traj, path, start = Trajectory(render=render, columns="latent x_t, decoded guess of x_0"), [], time.perf_counter()
    for i, step, kept, shown in frames(records, req.steps, progress):
        final = step.x_s
        if words:
            path.append(proj(step.x_t[0]))
        if kept:
            state = torch.stack(path) if words else step.x_t.float().cpu()
            traj.add(f"step {i + 1}/{req.steps}: t = {step.t}", state, ep_view(req.data, step.x0_hat))
        if shown:
            label, *pics = traj.picture(-1)
            yield (*pics, label, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip())
    seconds = time.perf_counter() - start
    info = (
        f"{req.sampler.upper()}{f' (η = {req.eta:g})' if req.eta else ''}, {req.steps} steps, "
        f"{req.n} samples: {figures(req.data, final)}. {seconds:.2f} s, "
        f"{req.steps} decoder and {req.steps - 1} encoder evaluations."
    )
    label, *pics = traj.picture(-1)
    yield (
        *pics,
        label,
        render(ep_view(req.data, final)),
        info,
        traj.gif(),
        traj,
        scrub_slider(len(traj.frames)),
    )


def ep_view(name: str, x: torch.Tensor) -> torch.Tensor:
    """Model-space data as the renderer takes it: images in [0, 1], or tokens as they are."""
    return x.cpu() if ep.is_words(name) else ep.decode(name, x)


@event
def scrub(traj: Trajectory | None, k):
    if traj is None or not traj.frames:
        raise gr.Error("generate first: there is no trajectory to scrub yet")
    label, *pics = traj.picture(frame_index(k, len(traj.frames)))
    return (*pics, label)


def noise_levels(value, T: int) -> list[int]:
    """A user's list of t values ("1, 250, 500"): 1 … MAX_LEVELS distinct whole numbers in 1 … T, sorted."""
    parts = str(value if value is not None else "").replace(",", " ").split()
    if not 1 <= len(parts) <= MAX_LEVELS:
        raise gr.Error(f"t values: give 1 to {MAX_LEVELS} values of t between 1 and {T}, separated by commas")
    return sorted({whole(p, "each t", 1, T) for p in parts})


def default_levels(T: int) -> str:
    """t = 1, T/8, …, T: eight levels, the issue's T/4, T/2, 3T/4 among them."""
    return ", ".join(str(t) for t in sorted({1, *(round(k * T / 8) for k in range(1, 9))}))


@event
def round_trip(name, first, seed, levels=None, picture=None):
    """Held-out examples first … first+7 (or the user's digit) encoded, noised to each t and decoded: a
    picture and figures."""
    name = choice(name, "data", ENCODING_DATA)
    T = ep.encoding_T(name)
    first = whole(first, "first held-out example", 0, _held_out_count(name) - ROUND_TRIP_N)
    ts = noise_levels(default_levels(T) if levels is None else levels, T)
    seed = whole(seed, "seed")
    mine = uploaded_picture(picture, "your digit")
    if mine is not None and ep.is_words(name):
        raise gr.Error("your digit goes with the mnist28 model; en5 round-trips held-out words")
    x0 = None if mine is None else to_model(digit_from_picture(mine))[None]
    rt = ep.round_trip(name, ts, first=first, n=ROUND_TRIP_N if x0 is None else 1, seed=seed, x0=x0)
    if ep.is_words(name):
        vocab = text.vocab(name)
        cols = [viz.words_picture(vocab.decode(rt.x0.cpu()), ncol=1)]
        for x in rt.x0_hat:
            cols.append(viz.words_picture(vocab.decode(x.cpu()), valid=frozenset(vocab.decode(rt.x0.cpu())), ncol=1))
        what, figs = "character accuracy", [f"{s['char_accuracy']:.0%}" for s in rt.scores()]
    else:
        cols = [viz.picture(ep.decode(name, rt.x0), scale=2, ncol=1)]
        for z, x in zip(rt.latents, rt.x0_hat):
            cols.append(
                viz.side_by_side(
                    viz.picture(viz.latent_images(z), scale=2, ncol=1),
                    viz.picture(ep.decode(name, x), scale=2, ncol=1),
                    gap=2,
                )
            )
        what, figs = "mean absolute pixel error", [f"{s['pixel_l1']:.3f}" for s in rt.scores()]
    caption = (
        f"Left: x_0. Then for t = {', '.join(map(str, ts))}: "
        + ("x̂_0 = argmax q(x_0 | x_t) (green: correct word)" if ep.is_words(name) else "the noisy latent x_t and x̂_0")
        + f". {what} per t: "
        + ", ".join(f"t = {t}: {f}" for t, f in zip(ts, figs))
    )
    titles = ["x_0", *(f"t = {t}" for t in ts)]
    return viz.side_by_side(*(viz.titled(c, title, size=11) for c, title in zip(cols, titles)), gap=12), caption


def verdict(quality: dict) -> str:
    """One line read off a Generation table: the encoding model's best row against the other model's best,
    on valid words (higher is better) or the Fréchet distance of digits (lower is better)."""
    table = next((t for t in quality.get("tables", []) if "model" in t["columns"]), None)
    if table is None:
        return ""
    cols = table["columns"]
    key, higher = ("valid", True) if "valid" in cols else ("Fréchet", False)
    rows = [dict(zip(cols, r)) for r in table["rows"]]

    def best(rs):
        return (max if higher else min)(rs, key=lambda r: float(r[key]))

    ours = [r for r in rows if r["model"] == "encoding"]
    theirs = [r for r in rows if r["model"] != "encoding"]
    try:
        ours, theirs = best(ours), best(theirs)
    except (ValueError, KeyError):  # a side missing, or a figure that is not a number
        return ""
    helps = (float(ours[key]) > float(theirs[key])) == higher
    other = theirs["model"].split(" (")[0]
    return (
        f"**Read off the rows:** the learned latent's best {key} is {ours[key]} ({ours['sampler']}, "
        f"{ours['steps']} steps) against {theirs[key]} for the {other} model ({theirs['sampler']}, "
        f"{theirs['steps']} steps): here the learned latent {'helps' if helps else 'does not help'}."
    )


def quality_note() -> str:
    """The measured figures of the shipped models (their quality.json), as Markdown tables."""
    parts = []
    for name in ENCODING_DATA:
        file = checkpoint_root() / f"encoding-{name}" / "quality.json"
        if not file.is_file():
            continue
        q = json.loads(file.read_text())
        for table in q.get("tables", [q]):
            parts += [f"**{table.get('title', name)}** — {table.get('note', '')}", ""]
            parts += ["| " + " | ".join(table["columns"]) + " |", "|" + " --- |" * len(table["columns"])]
            parts += ["| " + " | ".join(map(str, r)) + " |" for r in table["rows"]]
            parts.append("")
        parts += [verdict(q), ""]
        cfg = checkpoint_root() / f"encoding-{name}" / "config.json"
        if cfg.is_file():
            parts += checkpoint.diagnostics_lines(
                json.loads(cfg.read_text()).get("diagnostics"), f"**Diagnostics of encoding-{name}** (held-out data)"
            )
            parts.append("")
        if q.get("command"):
            parts += [f"Measured by `{q['command']}`.", ""]
    return "\n".join(parts) or "No measured figures yet: run `python -m bench.encoding_quality --write-card`."


def _cleared(name):
    """Empty pictures and captions for a new data set, with the legends of its latent view."""
    words = ep.is_words(choice(name, "data", ENCODING_DATA))
    legend = (
        "xₜ: each letter position's latent path, projected to 2-D (grey letters: where F puts each character)"
        if words
        else "xₜ: the latent, its 4 channels of 7 × 7 as tiles (grey = 0)"
    )
    return gr.update(value=None, label=legend), *([None] * 3), "", "", None, ""


def _data_changed(name):
    """The temperature shows for words; the held-out index and the t values fit the data set's model;
    your own digit (emptied) shows for digits only."""
    name = choice(name, "data", ENCODING_DATA)
    words = ep.is_words(name)
    try:
        T = ep.encoding_T(name)
    except FileNotFoundError:  # no shipped model: the run says so when pressed
        return gr.update(visible=words), gr.skip(), gr.skip(), gr.update(visible=not words, value=None)
    return (
        gr.update(visible=words),
        gr.update(maximum=_held_out_count(name) - ROUND_TRIP_N),
        gr.update(value=default_levels(T)),
        gr.update(visible=not words, value=None),
    )


@lru_cache(maxsize=None)
def _held_out_count(name: str) -> int:
    return len(ep.encoding_data(name, "test"))


def build() -> gr.Blocks:
    with gr.Blocks() as tab:
        explain("encoding")
        tries = gr.Row()  # filled below, once the inputs exist
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                data = gr.Radio(list(ENCODING_DATA), value="mnist28", label="data")
                sampler = gr.Radio(list(encoding.SAMPLERS), value="ddim", label="sampler")
                steps = gr.Slider(1, 1000, value=50, step=1, label="steps K")
                eta = gr.Slider(0, 1, value=0, step=0.05, label="DDIM η")
                temperature = gr.Slider(
                    0,
                    ep.MAX_TEMPERATURE,
                    value=0,
                    step=0.05,
                    label="x̂_0 temperature",
                    info="0: argmax of q",
                    visible=False,
                )
                with gr.Row():
                    seed = gr.Number(0, precision=0, label="seed")
                    n = gr.Slider(1, TAB_MAX_SAMPLES, value=16, step=1, label="samples")
                go = gr.Button("Generate", variant="primary")
            with gr.Column(scale=2):
                with gr.Row():
                    latent = gr.Image(
                        label="xₜ: the latent, its 4 channels of 7 × 7 as tiles (grey = 0)",
                        type="pil",
                        format="png",
                        interactive=False,
                        min_width=120,
                    )
                    x0_hat = gr.Image(
                        label="x̂₀: the decoder's guess", type="pil", format="png", interactive=False, min_width=120
                    )
                caption = gr.Markdown()
                frame = gr.Slider(0, 1, value=0, step=1, label="scrub the trajectory", interactive=False)
                controls = gr.Column()  # play / pause / step, filled below
                samples = gr.Image(label="samples", type="pil", format="png", interactive=False)
                info = gr.Markdown()
                animation = gr.Image(label="animation: latent | x̂_0", type="filepath")
        gr.Markdown("#### Round trip: encode held-out examples (or your digit), noise the latent to t, decode")
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                first = gr.Slider(0, 400, value=0, step=1, label="first held-out example")
                levels = gr.Textbox(default_levels(1000), label=f"t values (1 to {MAX_LEVELS} of them, each 1 … T)")
                rt_seed = gr.Number(0, precision=0, label="noise seed")
                picture = digit_pad()
                rt_go = gr.Button("Encode, noise, decode")
            with gr.Column(scale=2):
                rt_image = gr.Image(label="round trip", type="pil", format="png", interactive=False)
                rt_caption = gr.Markdown()
        with gr.Accordion("Measured: where the learned latent helps and where it does not", open=False):
            gr.Markdown(quality_note())
        traj = session_state()
        inputs = [data, sampler, steps, eta, temperature, seed, n]
        outputs = [latent, x0_hat, caption, samples, info, animation, traj, frame]
        checked(go.click, _check, on_gpu(run), inputs, outputs, api_name="encoding_run", **SAMPLING, preprocess=False)
        with tries:
            examples(
                "Try",
                [
                    ("digits · DDPM, 50 steps", ("mnist28", "ddpm", 50, 0.0, 0.0, 0, 16)),
                    ("words · DDIM, 50 steps", ("en5", "ddim", 50, 0.0, 0.0, 0, 16)),
                ],
                inputs,
                _check,
                on_gpu(run),
                outputs,
                **SAMPLING,
                preprocess=False,
            )
        frame.release(scrub, [traj, frame], [latent, x0_hat, caption], api_name="encoding_scrub", preprocess=False)
        with controls:
            player(frame, traj, scrub, [latent, x0_hat, caption], lambda t: len(t.frames))
        rt_go.click(
            on_gpu(round_trip),
            [data, first, rt_seed, levels, picture],
            [rt_image, rt_caption],
            api_name="encoding_round_trip",
            **SAMPLING,
            preprocess=False,
        )
        for listener in (data.change, tab.load):
            listener(_data_changed, [data], [temperature, first, levels, picture], api_visibility="private")
        # what the last run showed belongs to the data it ran on: cleared, the legends set, when it changes
        shown = [latent, x0_hat, samples, animation, caption, info, rt_image, rt_caption]
        data.change(_cleared, [data], shown, api_visibility="private")
    return tab
