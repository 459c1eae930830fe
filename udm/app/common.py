"""Shared pieces of the tabs: input checking that answers with `gr.Error`, and trajectory frames."""

from __future__ import annotations

import functools
import inspect
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import torch
from PIL import Image

from .. import viz

MAX_FRAMES = 100  # frames kept per run for the scrub slider and the GIF
_GIF_DIR = Path(tempfile.gettempdir()) / "udm-gifs"  # created on first use, not at import


def whole(value, name: str, lo: int, hi: int) -> int:
    """A finite whole number in [lo, hi], or a gr.Error saying what is allowed."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a whole number between {lo} and {hi}, got {value!r}") from None
    if not math.isfinite(f) or f != int(f) or not lo <= f <= hi:
        raise gr.Error(f"{name} must be a whole number between {lo} and {hi}, got {value!r}")
    return int(f)


def number(value, name: str, lo: float, hi: float) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a number between {lo} and {hi}, got {value!r}") from None
    if not math.isfinite(f) or not lo <= f <= hi:
        raise gr.Error(f"{name} must be a number between {lo} and {hi}, got {value!r}")
    return f


def choice(value, name: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise gr.Error(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    return value


def scrub_slider(n_frames: int):
    """The scrub slider's update after a run of n_frames frames, at the last one (a slider needs max > min)."""
    return gr.update(minimum=0, maximum=max(1, n_frames - 1), value=n_frames - 1, interactive=n_frames > 1)


def frame_index(k, n_frames: int) -> int:
    """A scrub position as a frame index (a one-frame run has a 0..1 slider)."""
    return min(whole(k, "frame", 0, max(1, n_frames - 1)), n_frames - 1)


def kept_indices(n_steps: int, limit: int = MAX_FRAMES) -> set[int]:
    """Which of n_steps step records to keep as frames: all, or `limit` evenly spread (first and last kept)."""
    if n_steps <= limit:
        return set(range(n_steps))
    return {round(i * (n_steps - 1) / (limit - 1)) for i in range(limit)}


@dataclass
class Trajectory:
    """Frames of one run, each a label and a few small tensors (float16, data space: x_t, x̂_0, … of one
    or more samplers) drawn on demand by `render`."""

    render: Callable[[torch.Tensor], Image.Image]
    frames: list[tuple[str, tuple[torch.Tensor, ...]]] = field(default_factory=list)

    def add(self, label: str, *xs: torch.Tensor) -> None:
        self.frames.append((label, tuple(x.half() for x in xs)))

    def picture(self, k: int) -> tuple:
        """(label, one picture per tensor) of frame k."""
        label, xs = self.frames[k]
        return (label, *(self.render(x.float()) for x in xs))

    def gif(self) -> str:
        """Write the animation (the frame's pictures side by side) to a temporary GIF and return its path."""
        return write_gif([viz.side_by_side(*self.picture(k)[1:]) for k in range(len(self.frames))])


def write_gif(frames: list[Image.Image]) -> str:
    """An animation of `frames` in a temporary GIF (removed after an hour); its path."""
    _GIF_DIR.mkdir(exist_ok=True)
    _forget_old_gifs()  # and old pictures
    path = Path(tempfile.mkstemp(suffix=".gif", dir=_GIF_DIR)[1])
    path.write_bytes(viz.gif_bytes(frames))
    return str(path)


def image_file(img: Image.Image) -> str:
    """A picture as a PNG file of its own (removed after an hour); its path."""
    _GIF_DIR.mkdir(exist_ok=True)
    path = Path(tempfile.mkstemp(suffix=".png", dir=_GIF_DIR)[1])
    img.save(path, format="PNG")
    return str(path)


def _as_file(x):
    if isinstance(x, Image.Image):
        return image_file(x)
    if isinstance(x, dict) and isinstance(x.get("value"), Image.Image):  # a gr.update carrying a picture
        return {**x, "value": image_file(x["value"])}
    return x


def pictures_as_files(fn):
    """Wrap an event function (plain or generator) so the pictures it returns leave as files of their own.

    Gradio writes a PIL output to a cache path named after its content, in place: two users shown the same
    picture at the same moment (the defaults, the same seed) could be served a half-written file. Files
    are copied into that cache atomically instead."""

    def convert(out):
        return tuple(_as_file(x) for x in out) if isinstance(out, tuple) else _as_file(out)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args, **kwargs):
            for out in fn(*args, **kwargs):
                yield convert(out)

        return stream

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return convert(fn(*args, **kwargs))

    return call


def _forget_old_gifs(max_age: float = 3600.0) -> None:
    now = time.time()
    for f in [*_GIF_DIR.glob("*.gif"), *_GIF_DIR.glob("*.png")]:
        try:
            if now - f.stat().st_mtime > max_age:
                f.unlink(missing_ok=True)
        except FileNotFoundError:  # another request removed it first
            pass
