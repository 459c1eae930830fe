"""The measured frontier, in the Compare tab: quality against cost for every sampler on the shipped
models, as the bench scripts wrote it beside each model (`hot-mnist28/pareto.json`: `bench.pareto`;
`mask-en5/nfe.json`, `edit-en5/nfe.json`: `bench.text_nfe`). Nothing is sampled here: the figures were
measured offline on 1,000–2,000 samples, far more than a live run could afford."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import gradio as gr

from .. import pipeline, viz
from .common import choice, event

DIGITS, WORDS = "digits (hot diffusion, MNIST)", "words (mask and edit, en5)"
VIEWS = (DIGITS, WORDS)


def _read(root: Path, folder: str, file: str) -> dict | None:
    path = root / folder / file
    return json.loads(path.read_text()) if path.is_file() else None


def _figure(draw, panels: int) -> viz.Image.Image:
    """A chart of `panels` panels one above the other (readable on a phone as on a desktop). A Figure of
    its own, not pyplot's shared state, so that two requests may draw at once."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.4 * panels + 1.4), dpi=100)
    canvas = FigureCanvasAgg(fig)
    draw(fig)
    fig.tight_layout(rect=(0, 0.13 if fig.legends else 0, 1, 1))
    canvas.draw()
    return viz.Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")


TOP = 1500  # Fréchet distances above are off the digits chart (the table has them)


def _lines(ax, rows: list[dict], x: str, y: str) -> None:
    import matplotlib

    names = list(dict.fromkeys(r["sampler"] for r in rows))
    colours = matplotlib.colormaps["tab20"]
    for k, name in enumerate(names):
        pts = sorted((r[x], r[y]) for r in rows if r["sampler"] == name)
        family = next(r for r in rows if r["sampler"] == name)["family"]
        style = {
            "udm": dict(ls="-", marker="o", lw=1.6),
            "distilled": dict(ls="-", marker="D", lw=2.8),  # the few-step student (python -m udm distill)
        }.get(family, dict(ls="--", marker="s", lw=1.0))
        ax.plot(*zip(*pts), label=name, ms=4, color=colours(k % 20), **style)


def _legend(fig) -> None:
    """One legend for all panels, below them."""
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.subplots_adjust(bottom=0.2)


def _plain_log(axis) -> None:
    """A log axis labelled 1, 2, 5, 10, 20, … rather than powers of ten."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_formatter(NullFormatter())


def digits_chart(found: dict) -> viz.Image.Image:
    rows, refs = found["rows"], found["references"]

    def draw(fig):
        for k, (x, title) in enumerate(
            (("evaluations", "network evaluations"), ("seconds_16", "seconds for 16 digits (this CPU)"))
        ):
            ax = fig.add_subplot(2, 1, k + 1)
            _lines(ax, [r for r in rows if x in r], x, "frechet")
            for name, v, style in (
                ("ddpm, 1000 steps", refs.get("ddpm, 1000 steps"), ":"),
                ("real digits", refs.get("real digits"), "-."),
            ):
                if v is not None:
                    ax.axhline(v, color="grey", ls=style, lw=1)
                    ax.text(0.01, v, f"{name} ({v:g})", transform=ax.get_yaxis_transform(), fontsize=7, va="bottom")
            ax.set(xscale="log", yscale="log", xlabel=title, ylabel="Fréchet distance (lower is better)")
            ax.set_ylim(top=min(TOP, ax.get_ylim()[1]))
            _plain_log(ax.xaxis)
            _plain_log(ax.yaxis)
            ax.grid(True, which="both", alpha=0.3)
        _legend(fig)

    return _figure(draw, 2)


def words_chart(found: dict[str, dict]) -> viz.Image.Image:
    def draw(fig):
        for k, (model, data) in enumerate(found.items()):
            ax = fig.add_subplot(len(found), 1, k + 1)
            rows = [
                dict(r, sampler=r["rule"], family="diffusers" if "diffusers" in r["rule"] else "udm")
                for r in data["rows"]
            ]
            _lines(ax, rows, "evaluations", "valid")
            ax.set(xlabel="network evaluations", ylabel="share of real words (higher is better)", ylim=(0, 1))
            ax.set_title(f"{model} model", fontsize=10)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7, ncol=2)

    return _figure(draw, len(found))


@lru_cache(maxsize=8)
def _view(view: str, root: Path) -> tuple[viz.Image.Image | None, list[list], str]:
    """(chart, table rows, note) from the figures under checkpoint root `root` (cached: they are files)."""
    if view == DIGITS:
        found = _read(root, "hot-mnist28", "pareto.json")
        if found is None:
            return None, [], "Not measured for these models yet: `python -m bench.pareto` writes it."
        rows = sorted(found["rows"], key=lambda r: (r["evaluations"], r["frechet"]))
        table = [
            [r["sampler"], r["steps"], r["evaluations"], r["frechet"], r["confident"], r.get("seconds_16", "—")]
            for r in rows
        ]
        refs = " · ".join(f"{k}: {v:g}" for k, v in found["references"].items())
        return digits_chart(found), table, f"{found['note']} References: {refs}."
    found = {m: d for m in ("mask", "edit") if (d := _read(root, f"{m}-en5", "nfe.json")) is not None}
    if not found:
        return None, [], "Not measured for these models yet: `python -m bench.text_nfe` writes it."
    table = [
        [m, r["rule"], r["evaluations"], r["valid"], r["novel_valid"]] for m, d in found.items() for r in d["rows"]
    ]
    return words_chart(found), table, next(iter(found.values()))["note"]


def warm() -> None:
    """Draw both charts once (matplotlib's first import and font cache take seconds): a server calls this
    in the background at start, so that the first visitor to open the panel does not wait."""
    for view in VIEWS:
        _view(view, pipeline.checkpoint_root())


HEADERS = {
    DIGITS: ["sampler", "steps", "network evaluations", "Fréchet", "confident", "s / 16 digits"],
    WORDS: ["model", "rule", "network evaluations", "valid", "novel-valid"],
}


@event
def show(view: str):
    """(chart, table, note) of the chosen models' measured frontier."""
    import pandas as pd

    view = choice(view, "view", VIEWS)
    picture, table, note = _view(view, pipeline.checkpoint_root())
    return picture, pd.DataFrame(table, columns=HEADERS[view]), note


def build() -> None:
    """The panel, rendered where it is called (inside the Compare tab)."""
    with gr.Accordion("How few evaluations? The measured frontier of every sampler", open=False) as box:
        gr.Markdown(
            "Quality against cost on the shipped models, measured offline on 1,000 digits or 2,000 words per "
            "point (far more than a live run can afford). udm's samplers are solid lines, diffusers' dashed, "
            "and the distilled student (Hot tab, model `distilled`) a thick line with diamonds."
        )
        view = gr.Radio(list(VIEWS), value=DIGITS, label="which models")
        chart = gr.Image(label="quality against cost", type="pil", format="png", interactive=False)
        note = gr.Markdown()
        table = gr.Dataframe(headers=HEADERS[DIGITS], interactive=False, wrap=True, label="the figures")
    view.change(show, [view], [chart, table, note], api_name="compare_frontier", preprocess=False)
    box.expand(show, [view], [chart, table, note], api_visibility="private", preprocess=False)
