"""Mask and Edit tabs: fixed-length words generated token by token, the naive rule and a chosen one
(the post's improved rule, or a reveal rule from elsewhere) side by side on the same seed; each step shows
x_t, the model's x̂_0 and the next state, changed positions highlighted."""

from __future__ import annotations

import html
import time
from functools import partial

import gradio as gr
import torch

from .. import discrete, judge, text
from .. import process as udm_process
from .. import text_pipeline as tp
from .common import (
    SAMPLING,
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

TAB_MAX_SAMPLES = 32
FIGURE_SAMPLES = 500  # words per rule behind the figures: the sign of a difference of 5 points is real
MAX_PATTERN = 16  # characters accepted in the pattern box before any other check
MASK_SHOWN = "▢"


def _cells(tokens: str, changed: list[bool] | None = None) -> str:
    out = []
    for i, c in enumerate(tokens):
        if c == text.MASK_CHAR:
            out.append(f'<span style="color:#999">{MASK_SHOWN}</span>')
        elif changed and changed[i]:
            out.append(f'<b style="background:#ffe08a">{html.escape(c)}</b>')
        else:
            out.append(html.escape(c))
    return '<span style="font-family:monospace;font-size:1.15em;letter-spacing:0.15em">' + "".join(out) + "</span>"


def _diff(a: str, b: str) -> list[bool]:
    return [x != y for x, y in zip(a, b)]


def _mark(word: str, name: str) -> str:
    if word in text.word_set(name, "test"):
        return " ★"  # a real word the model never saw in training
    return " ✓" if word in text.word_set(name) else ""


def _frame_html(frame: dict, name: str, final: bool) -> str:
    rules = frame["rules"]
    head = "".join(f"<th>{s}: x_t</th><th>{s}: x̂_0</th><th>{s}: next</th>" for s in rules)
    rows = []
    for i in range(len(frame[rules[0]][0])):
        cells = []
        for s in rules:
            x_t, x0, x_s = (col[i] for col in frame[s])
            mark = _mark(x_s, name) if final else ""
            cells += [_cells(x_t), _cells(x0, _diff(x0, x_t)), _cells(x_s, _diff(x_s, x_t)) + mark]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table = f'<table style="border-collapse:collapse"><tr>{head}</tr>{"".join(rows)}</table>'
    return f'<div class="udm-scroll">{table}</div>'


def _request(process, dataset, model, temperature, seed, n, sampler, k=1, pattern=None) -> tp.TextRequest:
    dataset = choice(dataset, "word list", text.TEXTS)
    if pattern is not None and not isinstance(pattern, str):
        raise gr.Error("pattern must be text, e.g. c?a?e")
    pattern = (pattern or "").strip() or None
    if pattern is not None and len(pattern) > MAX_PATTERN:
        raise gr.Error(f"pattern too long: {dataset} words have {text.vocab(dataset).length} characters")
    return tp.TextRequest(
        process=process,
        data=dataset,
        sampler=sampler,
        model=choice(model, "model", tp.models(process)),
        n=whole(n, "number of samples", 1, TAB_MAX_SAMPLES),
        seed=whole(seed, "seed"),
        k=whole(k, "k (positions per step)"),
        temperature=number(temperature, "temperature"),
        pattern=pattern,
    )


def _figures(name: str, words: list[str]) -> str:
    """The shares of valid, novel-valid and distinct words, each ± its standard error."""
    s, n = judge.word_scores(name, words), len(words)
    shares = [f"{s[k]:.0%} ± {(s[k] * (1 - s[k]) / n) ** 0.5:.0%}" for k in ("valid", "novel_valid")]
    return f"valid {shares[0]}, novel-valid {shares[1]}, distinct {s['distinct']:.0%}"


def _rules(process: str, rule) -> tuple[str, str]:
    """The naive rule and the one chosen beside it."""
    return "naive", choice(rule, "rule beside naive", tp.rules(process)[1:])


@event
def run(process, dataset, model, temperature, seed, n, k=1, pattern=None, rule="improved", progress=gr.Progress()):
    """Both rules in lockstep; stream one table per step, then the figures and the scrub range."""
    rules = _rules(process, rule)
    reqs = [_request(process, dataset, model, temperature, seed, n, s, k, pattern) for s in rules]
    vocab = text.vocab(reqs[0].data)
    start = time.perf_counter()
    runs = [list_steps(r) for r in reqs]
    played: list[dict] = []
    for i, pair, _, _ in frames(zip(*runs), len(runs[0]), progress, every=0.0):
        frame = {"label": f"step {i + 1}/{len(runs[0])}: t = {pair[0].t} → {pair[0].s}", "rules": rules}
        for s, step in zip(rules, pair):
            frame[s] = [vocab.decode(x.cpu()) for x in (step.x_t, step.x0_hat, step.x_s)]
        played.append(frame)
        yield _frame_html(frame, reqs[0].data, False), frame["label"], gr.skip(), gr.skip(), gr.skip()
    progress(1.0, desc=f"figures on {FIGURE_SAMPLES} words per rule")
    runs = udm_process.get(process)
    figures = " · ".join(
        f"**{r.sampler}**: {_figures(r.data, udm_process.many(runs, r, FIGURE_SAMPLES))}" for r in reqs
    )
    seconds = time.perf_counter() - start
    what = f"pattern {reqs[0].pattern}" if reqs[0].pattern else f"{reqs[0].n} words shown"
    info = (
        f"{process} model ({reqs[0].model}) on {reqs[0].data}, {what}, seed {reqs[0].seed}. "
        f"On {FIGURE_SAMPLES} words per rule (± one standard error): {figures}. "
        f"✓ valid word, ★ valid and never seen in training. {seconds:.2f} s."
    )
    yield (
        _frame_html(played[-1], reqs[0].data, True),
        played[-1]["label"],
        info,
        {"frames": played, "data": reqs[0].data},
        scrub_slider(len(played)),
    )


def _check(process, dataset, model, temperature, seed, n, k=1, pattern=None, rule="improved") -> None:
    for s in _rules(process, rule):
        _request(process, dataset, model, temperature, seed, n, s, k, pattern)


def _check_edit(dataset, model, temperature, seed, n, rule="improved") -> None:
    _check("edit", dataset, model, temperature, seed, n, rule=rule)


EXAMPLES = {  # each shows one of the post's claims
    "mask": [
        ("fill the blanks of c?a?e", ("en5", "trained", 1.0, 0, 12, 1, "c?a?e", "improved")),
        ("reveal all five at once (k = 5)", ("en5", "trained", 1.0, 0, 12, 5, "", "improved")),
        ("surest letters first (MaskGIT)", ("en5", "trained", 1.0, 0, 12, 1, "", "confidence")),
        ("the exact posterior: only real words", ("en5", "exact", 1.0, 0, 12, 1, "", "improved")),
    ],
    "edit": [
        ("English words, naive vs improved", ("en5", "trained", 1.0, 0, 12, "improved")),
        ("surest edits first", ("en5", "trained", 1.0, 0, 12, "confidence")),
        ("Chinese words", ("zh4", "trained", 1.0, 0, 12, "improved")),
        ("the exact posterior: only real words", ("en5", "exact", 1.0, 0, 12, "improved")),
    ],
}


def mask_run(dataset, model, temperature, seed, n, k, pattern, rule="improved", progress=gr.Progress()):
    yield from run("mask", dataset, model, temperature, seed, n, k, pattern, rule, progress=progress)


def edit_run(dataset, model, temperature, seed, n, rule="improved", progress=gr.Progress()):
    yield from run("edit", dataset, model, temperature, seed, n, rule=rule, progress=progress)


def _k_slider(dataset):
    length = text.vocab(choice(dataset, "word list", text.TEXTS)).length
    return gr.update(maximum=length)


def list_steps(req: tp.TextRequest) -> list:
    with torch.no_grad():
        return list(tp.text_plan(req).steps())


@event
def scrub(state: dict | None, k):
    if not state or not state.get("frames"):
        raise gr.Error("run the samplers first: there is no trajectory to scrub yet")
    frames = state["frames"]
    i = frame_index(k, len(frames))
    return _frame_html(frames[i], state["data"], i == len(frames) - 1), frames[i]["label"]


def build(process: str) -> gr.Blocks:
    with gr.Blocks() as tab:
        explain(process)
        tries = gr.Row()  # filled below, once the inputs exist
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                dataset = gr.Dropdown(list(text.TEXTS), value="en5", label="word list", info="en5: 5 letters; zh4")
                model_info = "exact: q(x_0|x_t) of the list" + (
                    "; trained takes the last step with the Mask tab's BERT, bert-only does not"
                    if process == "edit"
                    else ""
                )
                model = gr.Radio(list(tp.models(process)), value="trained", label="model", info=model_info)
                temperature = gr.Slider(
                    0.05,
                    tp.MAX_TEMPERATURE,
                    value=1.0,
                    step=0.05,
                    label="temperature",
                    info="1: the model as it is, a trained BERT at the temperature its card calibrates; "
                    "lower: surer guesses, higher: wilder ones",
                )
                with gr.Row():
                    seed = gr.Number(0, precision=0, label="seed")
                    n = gr.Slider(1, TAB_MAX_SAMPLES, value=12, step=1, label="samples")
                extra = []
                if process == "mask":
                    k = gr.Slider(1, 5, value=1, step=1, label="k: positions revealed per step (improved)")
                    pattern = gr.Textbox(label="pattern (optional)", placeholder="c?a?e  ·  ??ing  ·  一?二?")
                    extra = [k, pattern]
                    dataset.change(_k_slider, [dataset], [k], api_visibility="private")
                rule = gr.Dropdown(
                    list(tp.rules(process)[1:]),
                    value="improved",
                    label="rule beside naive",
                    info="improved: the post's; "
                    + "; ".join(f"{r}: {discrete.RULE_SOURCES[r]}" for r in tp.rules(process)[2:]),
                )
                extra.append(rule)
                go = gr.Button("Run both rules", variant="primary")
            with gr.Column(scale=2):
                table = gr.HTML()
                caption = gr.Markdown()
                frame = gr.Slider(0, 1, value=0, step=1, label="scrub the steps", interactive=False)
                controls = gr.Column()  # play / pause / step, filled below
                info = gr.Markdown()
        state = session_state()
        inputs, outputs = [dataset, model, temperature, seed, n, *extra], [table, caption, info, state, frame]
        fn = on_gpu(mask_run if process == "mask" else edit_run)
        check = partial(_check, "mask") if process == "mask" else _check_edit
        checked(go.click, check, fn, inputs, outputs, api_name=f"{process}_run", **SAMPLING, preprocess=False)
        with tries:
            examples("Try", EXAMPLES[process], inputs, check, fn, outputs, **SAMPLING, preprocess=False)
        frame.release(scrub, [state, frame], [table, caption], api_name=f"{process}_scrub", preprocess=False)
        with controls:
            player(frame, state, scrub, [table, caption], lambda s: len(s["frames"]))
    return tab


def build_mask() -> gr.Blocks:
    return build("mask")


def build_edit() -> gr.Blocks:
    return build("edit")
