"""Shared pieces of the tabs: input checking that answers with `gr.Error`, and trajectory frames."""

from __future__ import annotations

import contextlib
import functools
import html
import inspect
import io
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import torch
from PIL import Image

from .. import viz
from . import mainthread

MAX_FRAMES = 100  # frames kept per run for the scrub slider and the GIF
GIF_WIDTH = 520  # an animation frame's pictures at most this wide (halved by nearest neighbour): a few MB
STREAM_EVERY = 0.4  # seconds between streamed frames: each costs ~25 ms of pictures and messaging on this CPU
_GIF_DIR = Path(tempfile.gettempdir()) / "udm-gifs"  # created on first use, not at import
_last_sweep = 0.0  # when _forget_old_files last looked through _GIF_DIR

# Torch's intra-op threads for each event. Gradio runs events on worker threads; a second thread running
# torch on two OpenMP threads beside the main thread's halves the speed of both (udm.app.mainthread), so
# events take one, and hand their network's heavy work to the main thread where it serves; two events at
# once then share the two cores without oversubscribing them. 0 keeps torch's own.
EVENT_THREADS = int(os.environ.get("UDM_EVENT_THREADS", "1"))
_TORCH_THREADS = torch.get_num_threads()  # torch's own count (OMP_NUM_THREADS, or one per core)

# Every event that runs a network draws from one pool of two workers (this CPU has two cores): a user's
# request waits in the bounded queue rather than piling one more sampling job onto busy cores.
SAMPLING = {"concurrency_id": "sampling", "concurrency_limit": 2}
STATE_SECONDS = 1800  # a session's trajectory (for the scrub slider) is dropped half an hour after its run


def session_state() -> gr.State:
    """A per-session slot for a run's trajectory that frees its memory after STATE_SECONDS."""
    return gr.State(None, time_to_live=STATE_SECONDS)


def whole(value, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """A widget's value as a whole number (a gr.Error naming the field otherwise), within [lo, hi] when
    given: the app's own caps on what a request may cost; the library checks the rest."""
    bounds = f" between {lo} and {hi}" if lo is not None else ""
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int past float's range
        raise gr.Error(f"{name} must be a whole number{bounds}, got {_short(value)}") from None
    if not math.isfinite(f) or f != int(f) or (lo is not None and not lo <= f <= hi):
        raise gr.Error(f"{name} must be a whole number{bounds}, got {_short(value)}")
    return int(value) if isinstance(value, int) else int(f)  # (a large int stays exact)


def number(value, name: str, lo: float | None = None, hi: float | None = None) -> float:
    """A widget's value as a finite number (a gr.Error naming the field otherwise), within [lo, hi] when given."""
    bounds = f" between {lo} and {hi}" if lo is not None else ""
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        raise gr.Error(f"{name} must be a number{bounds}, got {_short(value)}") from None
    if not math.isfinite(f) or (lo is not None and not lo <= f <= hi):
        raise gr.Error(f"{name} must be a number{bounds}, got {_short(value)}")
    return f


def _short(value, limit: int = 60) -> str:
    """A user's value as shown in an error message: its repr, cut to `limit` characters."""
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 1] + "…"


def choice(value, name: str, valid: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in valid:
        raise gr.Error(f"unknown {name} {_short(value)}; valid: {', '.join(valid)}")
    return value


def digit_pad(visible: bool = True) -> gr.Sketchpad:
    """Where a user draws or uploads a digit of their own (read with `uploaded_picture`)."""
    return gr.Sketchpad(
        sources=("upload", "clipboard"),
        canvas_size=(280, 280),
        layers=False,
        brush=gr.Brush(colors=["#000000"], default_size=20, color_mode="fixed"),
        label="your digit: pick the brush and draw, or upload (empty: held-out digits)",
        visible=visible,
    )


UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
MAX_UPLOAD_PIXELS = 2048 * 2048  # a drawing or a photo of one digit needs far fewer


def uploaded_picture(value, name: str) -> Image.Image | None:
    """A user's picture, an upload or a drawing (a sketchpad's flattened `composite`), decoded by Pillow;
    None when there is none. A request names the file, so only a file in Gradio's upload folder (where the
    upload route puts what it receives) is read, any other path is refused; its size is checked from the
    header before anything is decoded, and only the formats in UPLOAD_FORMATS are tried."""
    from gradio.utils import get_upload_folder, is_in_or_equal

    if isinstance(value, dict) and "composite" in value:  # a sketchpad: background, layers and their composite
        value = value["composite"]
    if value is None or value == "" or value == {}:
        return None
    path = value.get("path") if isinstance(value, dict) else None
    if not isinstance(path, str) or not path:
        raise gr.Error(f"{name}: expected an uploaded or drawn picture, got {_short(value)}")
    if not is_in_or_equal(path, get_upload_folder()) or not os.path.isfile(path):
        raise gr.Error(f"{name}: only a picture uploaded to this server can be read")
    try:
        with Image.open(path, formats=UPLOAD_FORMATS) as img:
            if img.width * img.height > MAX_UPLOAD_PIXELS:
                raise gr.Error(
                    f"{name}: {img.width} × {img.height} pixels is too large; at most {MAX_UPLOAD_PIXELS:,} pixels"
                )
            img.load()
            return img.copy()
    except gr.Error:
        raise
    except Image.DecompressionBombError:  # past twice Pillow's own limit: refused before the header is read out
        raise gr.Error(f"{name}: too large a picture; at most {MAX_UPLOAD_PIXELS:,} pixels") from None
    except Exception:  # a decoder may fail in many ways (OSError, EOFError, struct.error, a bomb, …)
        raise gr.Error(f"{name}: not a picture Pillow can read ({', '.join(UPLOAD_FORMATS)})") from None


def scrub_slider(n_frames: int):
    """The scrub slider's update after a run of n_frames frames, at the last one (a slider needs max > min)."""
    return gr.update(minimum=0, maximum=max(1, n_frames - 1), value=n_frames - 1, interactive=n_frames > 1)


def frame_index(k, n_frames: int) -> int:
    """A scrub position as a frame index (a one-frame run has a 0..1 slider)."""
    return min(whole(k, "frame", 0, max(1, n_frames - 1)), n_frames - 1)


def frames(records, total: int, progress, every: float = STREAM_EVERY, limit: int = MAX_FRAMES):
    """Walk a run's step records (or tuples of records of runs in lockstep), yielding (i, record, kept,
    shown): `kept` marks the records that become frames (all, or `limit` spread evenly, first and last
    among them), `shown` the kept ones to stream now (the first, then at most one every `every` seconds;
    each costs drawing, PNG encoding and a message). The progress bar moves with every shown frame."""
    keep, last = kept_indices(total, limit), 0.0
    for i, record in enumerate(mainthread.steps(records)):
        kept = i in keep
        shown = kept and (i == 0 or time.perf_counter() - last > every)
        if shown:
            last = time.perf_counter()
            head = record[0] if isinstance(record, tuple) else record
            progress((i + 1) / total, desc=f"t = {head.t} → {head.s}")
        yield i, record, kept, shown


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
    columns: str = "x_t, guess of x_0"  # what the animation's pictures are, named on every frame

    def add(self, label: str, *xs: torch.Tensor) -> None:
        self.frames.append((label, tuple(x.half() for x in xs)))

    def picture(self, k: int) -> tuple:
        """(label, one picture per tensor) of frame k."""
        label, xs = self.frames[k]
        return (label, *(self.render(x.float()) for x in xs))

    def _animation_frame(self, k: int) -> Image.Image:
        label, *pictures = self.picture(k)
        both = viz.shrink(viz.side_by_side(*pictures), GIF_WIDTH)
        return viz.titled(both, (label, f"   (left to right: {self.columns})"), below=True)

    def gif(self) -> str:
        """Write the animation (the frame's pictures side by side; at most GIF_FRAMES of the frames, evenly
        spread) to a temporary GIF and return its path."""
        kept = sorted(kept_indices(len(self.frames), GIF_FRAMES))
        return write_gif([self._animation_frame(k) for k in kept], len(self.frames))


GIF_FRAMES = 25  # frames of a run's animation: each costs drawing and encoding, and ~60 kB of GIF
GIF_MS = 80  # ms a step shows in the animation when it has all of them; fewer frames show longer each (≤ 200)


def write_gif(frames: list[Image.Image], steps: int | None = None) -> str:
    """An animation of `frames` (standing for `steps` frames, the same length of animation) in a temporary
    GIF (removed after an hour); its path."""
    ms = min(200, round(GIF_MS * (steps or len(frames)) / max(1, len(frames))))
    return _new_file(".gif", viz.gif_bytes(frames, ms=ms))


def image_file(img: Image.Image) -> str:
    """A picture as a PNG file of its own (removed after an hour); its path."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # 3× quicker than the default level, a little larger
    return _new_file(".png", buf.getvalue())


def _new_file(suffix: str, content: bytes) -> str:
    """`content` in a new file of a unique name in the pictures' folder (files older than an hour go)."""
    _GIF_DIR.mkdir(exist_ok=True)
    _forget_old_files()
    fd, path = tempfile.mkstemp(suffix=suffix, dir=_GIF_DIR)
    with os.fdopen(fd, "wb") as f:  # closes the descriptor mkstemp opened
        f.write(content)
    return path


def _as_file(x):
    if isinstance(x, Image.Image):
        return image_file(x)
    if isinstance(x, dict) and isinstance(x.get("value"), Image.Image):  # a gr.update carrying a picture
        return {**x, "value": image_file(x["value"])}
    return x


@contextlib.contextmanager
def _refusals_as_errors():
    """A library refusal (ValueError) or a missing checkpoint (FileNotFoundError) as a gr.Error with its
    message; every message leaves as text (a user's input quoted in it is never rendered as HTML)."""
    try:
        yield
    except gr.Error as e:  # (itself a ValueError)
        raise gr.Error(_as_text(str(e.message)), duration=e.duration, visible=e.visible, title=e.title) from None
    except (ValueError, FileNotFoundError) as e:
        raise gr.Error(_as_text(str(e))) from None


def _as_text(message: str) -> str:
    """A message as the error popup shows it: what a user typed into it stays text, never markup."""
    return html.escape(message, quote=False)


def _event_threads(n: int) -> None:
    """Hold a worker thread's torch to n intra-op threads (a per-thread setting; the main thread, where a
    script or a test may call an event, keeps its own); 0: torch's default."""
    if threading.current_thread() is not threading.main_thread():
        n = n or _TORCH_THREADS
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


@contextlib.contextmanager
def torch_threads(n: int):
    """Torch on n threads (0: torch's own count) on this worker thread for a while."""
    before = torch.get_num_threads()
    _event_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def event(fn=None, *, threads: int = EVENT_THREADS):
    """Wrap an event function (plain or generator) for Gradio:

    - it runs with `threads` torch threads (EVENT_THREADS; 0: torch's default);
    - a request the library refuses (ValueError) or a missing checkpoint (FileNotFoundError), wherever it
      is raised, even mid-stream, reaches the user as a gr.Error with the library's message;
    - the pictures it returns leave as files of their own. Gradio writes a PIL output to a cache path named
      after its content, in place: two users shown the same picture at the same moment (the defaults, the
      same seed) could be served a half-written file. Files are copied into that cache atomically instead.
    """

    if fn is None:  # @event(threads=…)
        return functools.partial(event, threads=threads)

    def convert(out):
        if not isinstance(out, tuple):
            return _as_file(out)
        files: dict[int, object] = {}  # one picture given twice in a message is written once
        return tuple(files[id(x)] if id(x) in files else files.setdefault(id(x), _as_file(x)) for x in out)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args, **kwargs):
            _event_threads(threads)
            with _refusals_as_errors():
                for out in fn(*args, **kwargs):
                    yield convert(out)
                    _event_threads(threads)  # resumed, perhaps on another of Gradio's worker threads

        return stream

    @functools.wraps(fn)
    def call(*args, **kwargs):
        _event_threads(threads)
        with _refusals_as_errors():
            return convert(fn(*args, **kwargs))

    return call


PLAY_EVERY = 0.3  # seconds a frame shows while playing


def player(slider, state, scrub, outputs: list, length) -> None:
    """Play, pause and step buttons under a scrub slider: they move the slider and show its frame with
    `scrub(state, k)` into `outputs`; `length(state)` is the number of frames (0 before a run)."""
    with gr.Row():
        back = gr.Button("◀ step", size="sm", min_width=70)
        play = gr.Button("▶ play", size="sm", min_width=70)
        pause = gr.Button("❚❚ pause", size="sm", min_width=70)
        ahead = gr.Button("step ▶", size="sm", min_width=70)
    timer = gr.Timer(PLAY_EVERY, active=False)

    def frames_in(s) -> int:
        return length(s) if s is not None else 0

    def start(s, k):
        n = frames_in(s)
        if n < 2:
            return gr.Timer(active=False), gr.skip()
        return gr.Timer(active=True), 0 if whole(k, "frame") >= n - 1 else gr.skip()  # from the end: again

    def move(s, k, by: int):
        n = frames_in(s)
        if n == 0:
            return gr.skip(), *[gr.skip()] * len(outputs)
        k = min(max(whole(k, "frame") + by, 0), n - 1)
        return k, *scrub(s, k)

    def tick(s, k):
        n = frames_in(s)
        if n < 2:
            return gr.skip(), *[gr.skip()] * len(outputs), gr.Timer(active=False)
        k = min(whole(k, "frame") + 1, n - 1)
        return k, *scrub(s, k), gr.Timer(active=k < n - 1)

    private = dict(api_visibility="private", preprocess=False)
    play.click(event(start), [state, slider], [timer, slider], **private)
    pause.click(lambda: gr.Timer(active=False), None, timer, api_visibility="private")
    back.click(event(lambda s, k: move(s, k, -1)), [state, slider], [slider, *outputs], **private)
    ahead.click(event(lambda s, k: move(s, k, 1)), [state, slider], [slider, *outputs], **private)
    timer.tick(event(tick), [state, slider], [slider, *outputs, timer], **private)


def examples(title: str, items: list[tuple[str, tuple]], inputs: list, check, fn, outputs: list, **kwargs) -> None:
    """One-click examples: a row of buttons, each setting `inputs` to its values and running `fn` on them
    (behind `check`, as the tab's own button does)."""
    with gr.Row(equal_height=True):
        gr.Markdown(f"**{title}**", container=False)
        for label, values in items:
            button = gr.Button(label, size="sm", variant="secondary", min_width=100)
            filled = button.click(lambda v=values: v, None, inputs, api_visibility="private", queue=False)
            checked(filled.success, check, fn, inputs, outputs, api_visibility="private", **kwargs)


def checked(trigger, check, fn, inputs, outputs, **kwargs):
    """Wire `fn` to a trigger (e.g. a button's `click`) behind `check`, a quick look at the same inputs: a
    refused input is answered by `check`, which has no outputs, so the pictures of the last run stay."""
    first = trigger(event(check), inputs, None, api_visibility="private", preprocess=False)
    return first.success(fn, inputs, outputs, **kwargs)


def _forget_old_files(max_age: float = 3600.0) -> None:
    now = time.time()
    global _last_sweep
    if now - _last_sweep < 60:  # one sweep of the folder a minute is enough
        return
    _last_sweep = now
    for f in [*_GIF_DIR.glob("*.gif"), *_GIF_DIR.glob("*.png")]:
        try:
            if now - f.stat().st_mtime > max_age:
                f.unlink(missing_ok=True)
        except FileNotFoundError:  # another request removed it first
            pass
