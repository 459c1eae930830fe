"""Pictures of samples: image grids, 2-D point clouds over the data, and animations (Pillow only)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

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
    """
    if any(f.mode != "L" for f in frames):
        palette = side_by_side(frames[0], frames[-1]).quantize(colors=16, method=Image.Quantize.MEDIANCUT)
        frames = [f.convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    buf = io.BytesIO()
    durations = [ms] * (len(frames) - 1) + [hold_last]
    frames[0].save(buf, format="GIF", save_all=True, append_images=list(frames[1:]), duration=durations, loop=0)
    return buf.getvalue()


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
