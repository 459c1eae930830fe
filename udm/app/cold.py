"""Cold diffusion tab: watch a degradation destroy a digit, then undo it with the naive and the improved
sampler side by side, restoring held-out digits or generating new ones from a fully degraded start."""

from __future__ import annotations

import time

import gradio as gr
import torch

from .. import cold, data, judge, viz
from .. import cold_pipeline as cp
from ..pipeline import to_data
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

TAB_MAX_SAMPLES = 32  # per sampler and request: two samplers run per click
DATA = "mnist28"


def _variants() -> tuple[tuple[str, float], ...]:
    try:
        return cp.cold_variants(DATA)
    except FileNotFoundError:
        return tuple((d, 0.0) for d in cold.DEGRADATIONS)


def _sigmas(degradation: str) -> list[float]:
    return [s for d, s in _variants() if d == degradation] or [0.0]


def _picture(x: torch.Tensor) -> viz.Image.Image:
    return viz.picture(x, scale=3)


def _request(degradation, sigma, mode, t, start_noise, fresh, seed, n, sampler) -> cp.ColdRequest:
    degradation = choice(degradation, "degradation", cold.DEGRADATIONS)
    mode = choice(mode, "mode", ("generate", "restore"))
    # every input is checked, also those this mode or sampler does not use
    restore_from, fresh = whole(t, "restore from t"), number(fresh, "fresh-noise share")
    return cp.ColdRequest(
        degradation=degradation,
        sampler=sampler,
        sigma=number(sigma, "forward noise σ"),
        n=whole(n, "number of samples", 1, TAB_MAX_SAMPLES),
        seed=whole(seed, "seed"),
        start_noise=number(start_noise, "x_T noise"),
        fresh=None if sampler == "naive" else fresh,
        restore_from=restore_from if mode == "restore" else None,
        data=DATA,
    )


def _figures(mode: str, x: torch.Tensor, originals: torch.Tensor | None) -> str:
    if mode == "restore":
        s = judge.restoration_scores(x, originals)
        return f"L1 {s['l1']:.3f}, PSNR {s['psnr']:.1f} dB"
    d = judge.diversity(x)
    return f"{int(d['distinct'])} distinct of {len(x)}, mean pairwise L1 {d['pairwise']:.3f}"


def _check(degradation, sigma, mode, t, start_noise, fresh, seed, n, picture=None) -> None:
    for s in cold.SAMPLERS:
        _request(degradation, sigma, mode, t, start_noise, fresh, seed, n, s)
    if mode == "restore":
        uploaded_picture(picture, "your digit")


@event
def run(degradation, sigma, mode, t, start_noise, fresh, seed, n, picture=None, progress=gr.Progress()):
    """Both samplers from the same start, in lockstep: stream (naive x_t, x̂_0, improved x_t, x̂_0, caption).
    Restoring, the digits are held-out ones, or n copies of the user's `picture` when there is one."""
    reqs = [_request(degradation, sigma, mode, t, start_noise, fresh, seed, n, s) for s in cold.SAMPLERS]
    mine = uploaded_picture(picture, "your digit") if mode == "restore" else None  # (hidden when generating)
    given = None if mine is None else data.digit_from_picture(mine).expand(reqs[0].n, -1, -1, -1)
    model = cp.cold_model(DATA)
    runs = [cp.cold_plan(r, originals=given).steps() for r in reqs]
    _, _, originals = cp.cold_start(reqs[0], model.T, "cpu", given) if mode == "restore" else (None, None, None)
    t0 = reqs[0].restore_from or model.T
    traj, start = (
        Trajectory(render=_picture, columns="naive x_t, its guess, improved x_t, its guess"),
        time.perf_counter(),
    )
    for i, (a, b), kept, shown in frames(zip(*runs), t0, progress, every=0.1):
        finals = [a.x_s, b.x_s]
        if kept:
            traj.add(f"step {i + 1}/{t0}: t = {a.t}", *(to_data(DATA, x) for x in (a.x_t, a.x0_hat, b.x_t, b.x0_hat)))
        if shown:
            label, *pics = traj.picture(-1)
            yield (*pics, label, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip())
    seconds = time.perf_counter() - start
    outs = [to_data(DATA, x) for x in finals]
    refs = None if originals is None else to_data(DATA, originals)
    figures = " · ".join(f"**{s}**: {_figures(mode, x, refs)}" for s, x in zip(cold.SAMPLERS, outs))
    digits = f"{len(outs[0])} copies of your digit" if given is not None else f"{len(outs[0])} held-out digits"
    what = f"restoring {digits} from t = {t0}" if mode == "restore" else "generating"
    info = (
        f"{degradation}, σ = {reqs[0].sigma:g}, x_T noise {reqs[0].start_noise:g}, {what}: {figures}. "
        f"{seconds:.2f} s, {2 * t0} network evaluations."
    )
    label, *pics = traj.picture(-1)
    original = gr.update(value=_picture(refs), visible=True) if refs is not None else gr.update(visible=False)
    yield (
        *pics,
        info,
        _picture(outs[0]),
        _picture(outs[1]),
        original,
        traj.gif(),
        traj,
        scrub_slider(len(traj.frames)),
    )


@event
def scrub(traj: Trajectory | None, k):
    if traj is None or not traj.frames:
        raise gr.Error("run the samplers first: there is no trajectory to scrub yet")
    label, *pics = traj.picture(frame_index(k, len(traj.frames)))
    return (*pics, label)


@event
def forward_strip(degradation, sigma, index):
    """One held-out digit at 8 strengths t = 0 … T, with the chosen σ."""
    degradation = choice(degradation, "degradation", cold.DEGRADATIONS)
    sigma = number(sigma, "forward noise σ", 0.0, 1.0)
    index = whole(index, "held-out digit", 0, len(data.images(DATA, "test")[0]) - 1)
    try:
        T = cp.cold_T(DATA)
    except FileNotFoundError:
        T = cold.Degradation(degradation).T
    fwd = cold.ColdForward(cold.Degradation(degradation, T), sigma)
    x0 = cp.held_out(DATA, index, 1)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(index))
    ts = torch.linspace(0, T, 8).round().long().tolist()
    frames = [viz.picture(to_data(DATA, fwd.sample(x0, t, noise)), scale=3) for t in ts]
    return viz.side_by_side(*frames), f"F_t(x_0) + σ ε at t = {', '.join(map(str, ts))} (T = {T})"


def _sigma_choices(degradation, sigma):
    """The σ values the restorer knows for this degradation; the chosen one stays if it is among them."""
    sigmas = _sigmas(choice(degradation, "degradation", cold.DEGRADATIONS))
    return gr.update(choices=sigmas, value=sigma if sigma in sigmas else sigmas[0])


def _restore_range():
    """The restore-from slider spans the shipped restorer's 1 … T, starting halfway."""
    try:
        T = cp.cold_T(DATA)
    except FileNotFoundError:
        return gr.skip()
    return gr.update(maximum=T, value=max(1, T // 2))


def _mode_changed(mode):
    restore = mode == "restore"
    return gr.update(visible=restore), gr.update(visible=restore)


def build() -> gr.Blocks:
    with gr.Blocks() as tab:
        explain("cold")
        tries = gr.Row()  # filled below, once the inputs exist
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                degradation = gr.Dropdown(list(cold.DEGRADATIONS), value="blur", label="degradation")
                sigma = gr.Radio(_sigmas("blur"), value=0.0, label="forward noise σ", info="values the restorer knows")
                mode = gr.Radio(["generate", "restore"], value="generate", label="mode")
                t = gr.Slider(1, 50, value=25, step=1, label="restore from t", visible=False)
                picture = digit_pad(visible=False)
                start_noise = gr.Slider(0, 1, value=0, step=0.01, label="x_T noise", info="added to the start")
                fresh = gr.Slider(0, 1, value=0, step=0.05, label="fresh noise (improved)", info="0: reuse ε̂")
                with gr.Row():
                    seed = gr.Number(0, precision=0, label="seed")
                    n = gr.Slider(1, TAB_MAX_SAMPLES, value=16, step=1, label="samples")
                go = gr.Button("Run naive and improved", variant="primary")
            with gr.Column(scale=2):
                with gr.Row():
                    naive_xt = gr.Image(label="naive: xₜ", type="pil", format="png", interactive=False, min_width=120)
                    naive_x0 = gr.Image(
                        label="naive: x̂₀ (its guess)", type="pil", format="png", interactive=False, min_width=120
                    )
                with gr.Row():
                    impr_xt = gr.Image(label="improved: xₜ", type="pil", format="png", interactive=False, min_width=120)
                    impr_x0 = gr.Image(
                        label="improved: x̂₀ (its guess)", type="pil", format="png", interactive=False, min_width=120
                    )
                caption = gr.Markdown()
                frame = gr.Slider(0, 1, value=0, step=1, label="scrub the trajectory", interactive=False)
                controls = gr.Column()  # play / pause / step, filled below
                # the results are the last frame's x̂₀: sent to API callers, not drawn a second time
                naive_out = gr.Image(
                    label="naive: result", type="pil", format="png", interactive=False, min_width=120, visible=False
                )
                impr_out = gr.Image(
                    label="improved: result", type="pil", format="png", interactive=False, min_width=120, visible=False
                )
                original = gr.Image(
                    label="the originals (restoring)",
                    type="pil",
                    format="png",
                    interactive=False,
                    min_width=120,
                    visible=False,
                )
                animation = gr.Image(label="animation: naive x_t | x̂_0 | improved x_t | x̂_0", type="filepath")
                with gr.Row():
                    index = gr.Slider(0, 499, value=0, step=1, label="held-out digit for the forward strip")
                strip = gr.Image(label="forward process", type="pil", format="png", interactive=False)
                strip_caption = gr.Markdown()
        traj = session_state()
        inputs = [degradation, sigma, mode, t, start_noise, fresh, seed, n, picture]
        outputs = [naive_xt, naive_x0, impr_xt, impr_x0, caption, naive_out, impr_out, original, animation, traj, frame]
        checked(go.click, _check, on_gpu(run), inputs, outputs, api_name="cold_run", **SAMPLING, preprocess=False)
        restore = gr.update(value=25, visible=True)
        with tries:
            examples(
                "Try",
                [
                    ("σ = 0: many starts, few digits", ("blur", 0.0, "generate", 25, 0.0, 0.0, 0, 16, None)),
                    ("σ = 0.2: variety comes back", ("blur", 0.2, "generate", 25, 0.0, 0.0, 0, 16, None)),
                    ("restore blurred digits from t = 25", ("blur", 0.0, "restore", restore, 0.0, 0.0, 0, 16, None)),
                ],
                inputs,
                _check,
                on_gpu(run),
                outputs,
                **SAMPLING,
                preprocess=False,
            )
        shown = [naive_xt, naive_x0, impr_xt, impr_x0, caption]
        frame.release(scrub, [traj, frame], shown, api_name="cold_scrub", preprocess=False)
        with controls:
            player(frame, traj, scrub, shown, lambda t: len(t.frames))
        strip_inputs, strip_outputs = [degradation, sigma, index], [strip, strip_caption]
        index.release(forward_strip, strip_inputs, strip_outputs, api_name="cold_forward", preprocess=False)
        for listener in (degradation.change, sigma.change):
            listener(forward_strip, strip_inputs, strip_outputs, api_visibility="private", preprocess=False)
        degradation.change(_sigma_choices, [degradation, sigma], [sigma], api_visibility="private")
        mode.change(_mode_changed, [mode], [t, picture], api_visibility="private")
        tab.load(forward_strip, strip_inputs, [strip, strip_caption], api_visibility="private")
        tab.load(_restore_range, None, [t], api_visibility="private")
    return tab
