"""Pictures of samples: image grids, 2-D point clouds over the data, and animations (Pillow only)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
DATA_COLOR = (200, 200, 200)
SAMPLE_COLOR = (31, 119, 180)


def grid(images: torch.Tensor, *, ncol: int | None = None, scale: int = 1, pad: int = 1) -> Image.Image:
    """(N, 1, H, W) in [0, 1] → one greyscale grid image, `scale` pixels per image pixel."""
    n, _, h, w = images.shape
    ncol = ncol or math.ceil(math.sqrt(n))
    nrow = math.ceil(n / ncol)
    canvas = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad), 255, dtype=np.uint8)
    pix = (images[:, 0].clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        canvas[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = pix[i]
    img = Image.fromarray(canvas, "L")
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST) if scale > 1 else img


def scatter(
    points: torch.Tensor, *, reference: torch.Tensor | None = None, size: int = 320, extent: float = 3.5
) -> Image.Image:
    """2-D points (N, 2) drawn over optional reference data (grey), on [-extent, extent]²."""
    img = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(img)

    def to_px(p: torch.Tensor) -> np.ndarray:
        q = (p.numpy() + extent) / (2 * extent) * (size - 1)
        q[:, 1] = size - 1 - q[:, 1]
        return q[(q >= 0).all(1) & (q < size).all(1)]

    for pts, color in ((reference, DATA_COLOR), (points, SAMPLE_COLOR)):
        if pts is not None:
            for x, y in to_px(pts.float()):
                draw.rectangle((x - 1, y - 1, x + 1, y + 1), fill=color)
    return img


def picture(
    x: torch.Tensor, *, reference: torch.Tensor | None = None, scale: int = 4, ncol: int | None = None
) -> Image.Image:
    """Images (N, 1, H, W) → a grid; points (N, 2) → a scatter plot."""
    if x.dim() == 4:
        return grid(x, scale=scale, ncol=ncol)
    return scatter(x, reference=reference)


def gif_bytes(frames: Sequence[Image.Image], *, ms: int = 80, hold_last: int = 1000) -> bytes:
    """An animated GIF (looping) of `frames`, the last one held for `hold_last` ms.

    Greyscale frames go in as they are; colour frames share one palette taken from the first and last
    frame (our pictures use a handful of colours), which is ~10× quicker than quantising each frame.
    Pillow's `optimize` (shrinking the palette, and transparent pixels where a frame repeats the last)
    is off: it takes 2–3× longer to write for a file within 1 % of the size, and it may merge greys a
    level or two apart; without it every frame reads back exactly as given.
    """
    if any(f.mode != "L" for f in frames):
        palette = side_by_side(frames[0], frames[-1]).quantize(colors=16, method=Image.Quantize.MEDIANCUT)
        frames = [f.convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    buf = io.BytesIO()
    durations = [ms] * (len(frames) - 1) + [hold_last]
    frames[0].save(
        buf, format="GIF", save_all=True, append_images=list(frames[1:]), duration=durations, loop=0, optimize=False
    )
    return buf.getvalue()


def shrink(image: Image.Image, max_width: int) -> Image.Image:
    """The picture at 1/k of its size (k the smallest whole number that fits `max_width`), by nearest
    neighbour: a grid drawn at scale 4 becomes the same grid at scale 2, exactly."""
    k = -(-image.width // max_width)
    return image if k <= 1 else image.resize((image.width // k, image.height // k), Image.NEAREST)


def side_by_side(*images: Image.Image, gap: int = 8) -> Image.Image:
    """Images in a row on a white background (greyscale if they all are)."""
    w = sum(i.width for i in images) + gap * (len(images) - 1)
    h = max(i.height for i in images)
    mode = "L" if all(i.mode == "L" for i in images) else "RGB"
    out = Image.new(mode, (w, h), 255 if mode == "L" else BACKGROUND)
    x = 0
    for i in images:
        out.paste(i.convert(mode), (x, 0))
        x += i.width + gap
    return out


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's default font at `size`, loaded once (a load takes longer than drawing a title)."""
    return ImageFont.load_default(size=size)


def titled(image: Image.Image, title: str | Sequence[str], size: int = 13, below: bool = False) -> Image.Image:
    """The image with a band holding `title` above it (or below: clear of a viewer's own label in the
    top-left corner); ASCII is safe in the default font. A title given in pieces is drawn piece by piece,
    each kept once drawn (an animation's frames share all but their first piece)."""
    band = size + 6
    mode = image.mode if image.mode in ("L", "RGB") else "RGB"
    pieces = [_text(t, size, mode) for t in ([title] if isinstance(title, str) else title)]
    width = 6 + sum(t.width for t in pieces)  # 3 px either side
    out = Image.new(mode, (max(image.width, width), image.height + band), 255 if mode == "L" else WHITE)
    out.paste(image.convert(mode), (0, 0 if below else band))
    x, y = 3, image.height + 2 if below else 2
    for t in pieces:
        out.paste(t, (x, y))
        x += t.width
    return out


WHITE = (255, 255, 255)


@lru_cache(maxsize=256)  # a few kB each
def _text(title: str, size: int, mode: str) -> Image.Image:
    """`title` drawn on white, band high, as wide as its advance (or its ink, where a glyph overhangs):
    kept, since an animation's frames share all of their titles but the label."""
    font = _font(size)
    width = max(round(font.getlength(title)), font.getbbox(title)[2] if title.strip() else 0)
    out = Image.new(mode, (width, size + 4), 255 if mode == "L" else WHITE)
    ImageDraw.Draw(out).text((0, 0), title, fill=0 if mode == "L" else (40, 40, 40), font=font)
    return out


LATENT_RANGE = 3.0  # latent values in [-3, 3] map to black..white (the latent has unit RMS)


def latent_images(z: torch.Tensor, size: int = 28) -> torch.Tensor:
    """Image latents (N, C, h, w) → (N, 1, size, size) in [0, 1]: the C channels tiled in a square,
    grey for 0, scaled up with nearest neighbours to sit beside the decoded images."""
    n, c, h, w = z.shape
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    tiles = torch.full((n, rows * h, cols * w), 0.0)
    for k in range(c):
        r, q = divmod(k, cols)
        tiles[:, r * h : (r + 1) * h, q * w : (q + 1) * w] = z[:, k].float().cpu()
    img = ((tiles / LATENT_RANGE + 1) / 2).clamp(0, 1).unsqueeze(1)
    return torch.nn.functional.interpolate(img, size=(size, size), mode="nearest")


PATH_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def viewable(x: torch.Tensor) -> torch.Tensor:
    """What `picture` draws for x: images (N, 1, H, W) and points (N, 2) as they are, an image latent
    (N, C ≠ 1, h, w) as `latent_images`."""
    return latent_images(x) if x.dim() == 4 and x.shape[1] != 1 else x


def latent_paths(
    paths: np.ndarray,
    *,
    anchors: Sequence[tuple[str, float, float]] = (),
    labels: Sequence[str] = (),
    size: int = 360,
    extent: float | None = None,
) -> Image.Image:
    """Per-position latent trajectories projected to 2-D, `paths` (steps, l, 2), drawn as coloured
    polylines (one per position, ending in a dot and its label) over grey `anchors` (text, x, y)."""
    pts = np.concatenate([paths.reshape(-1, 2), np.array([[a[1], a[2]] for a in anchors]).reshape(-1, 2)])
    extent = extent or float(np.abs(pts).max() * 1.1 + 1e-6)
    img = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(img)

    def px(x: float, y: float) -> tuple[float, float]:
        return ((x + extent) / (2 * extent) * (size - 1), (extent - y) / (2 * extent) * (size - 1))

    for label, x, y in anchors:
        draw.text(px(x, y), label, fill=DATA_COLOR)
    for i in range(paths.shape[1]):
        color = PATH_COLORS[i % len(PATH_COLORS)]
        line = [px(*p) for p in paths[:, i]]
        if len(line) > 1:
            draw.line(line, fill=color, width=1)
        x, y = line[-1]
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=color)
        if i < len(labels):
            draw.text((x + 5, y - 6), f"{i + 1}:{labels[i]}", fill=color)
    return img


VALID_COLOR, NOVEL_COLOR, OTHER_COLOR = (44, 160, 44), (214, 39, 40), (90, 90, 90)


def words_picture(
    words: Sequence[str], *, valid: frozenset[str] = frozenset(), novel: frozenset[str] = frozenset(), ncol: int = 4
) -> Image.Image:
    """Words in a grid of monospace cells: green when in `valid`, red when in `novel` (a real word never
    trained on), grey otherwise."""
    font = _font(16)
    rows = math.ceil(len(words) / ncol)
    cell_w, cell_h = 16 + 11 * max((len(w) for w in words), default=1), 24
    img = Image.new("RGB", (ncol * cell_w + 8, rows * cell_h + 8), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for i, w in enumerate(words):
        r, c = divmod(i, ncol)
        color = NOVEL_COLOR if w in novel else VALID_COLOR if w in valid else OTHER_COLOR
        draw.text((8 + c * cell_w, 6 + r * cell_h), w, fill=color, font=font)
    return img
