"""Pictures and animations: what a visitor is shown is what was drawn."""

import io

import numpy as np
import torch
from PIL import Image, ImageSequence

from udm import viz


def _frames_of(data: bytes) -> list[np.ndarray]:
    return [np.array(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(io.BytesIO(data)))]


def test_an_animation_reads_back_frame_for_frame():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(16, 1, 28, 28, generator=g)
    grey = [
        viz.titled(viz.grid(base * (k / 9) + torch.rand(16, 1, 28, 28, generator=g) * 0.1, scale=2), f"frame {k}")
        for k in range(10)
    ]
    colour = [
        viz.scatter(torch.randn(200, 2, generator=g), reference=torch.randn(300, 2, generator=g)) for _ in range(5)
    ]
    for frames in (grey, colour):
        back = _frames_of(viz.gif_bytes(frames))
        assert len(back) == len(frames)
        assert all(np.array_equal(b, np.array(f.convert("RGB"))) for b, f in zip(back, frames))


def _durations(path: str) -> list[int]:
    return [f.info["duration"] for f in ImageSequence.Iterator(Image.open(path))]


def test_a_trajectorys_animation_shows_its_frames_evenly_in_the_same_time():
    from functools import partial

    from udm.app import hot
    from udm.app.common import GIF_FRAMES, GIF_MS, Trajectory, kept_indices

    def trajectory(n: int) -> Trajectory:
        traj = Trajectory(render=partial(hot._picture, "mnist28"))
        g = torch.Generator().manual_seed(1)
        for k in range(n):
            traj.add(f"step {k + 1}/{n}: t = {n - k}", *torch.rand(2, 4, 1, 28, 28, generator=g))
        return traj

    short = trajectory(12)  # every frame
    back = _frames_of(open(path := short.gif(), "rb").read())
    expected = [np.array(short._animation_frame(k).convert("RGB")) for k in range(12)]
    assert len(back) == 12 and all(np.array_equal(b, e) for b, e in zip(back, expected))
    assert _durations(path)[:-1] == [GIF_MS] * 11

    long = trajectory(2 * GIF_FRAMES)  # every other frame (first and last among them), each shown twice as long
    back = _frames_of(open(path := long.gif(), "rb").read())
    kept = sorted(kept_indices(2 * GIF_FRAMES, GIF_FRAMES))
    assert len(back) == GIF_FRAMES and kept[0] == 0 and kept[-1] == 2 * GIF_FRAMES - 1
    assert all(np.array_equal(b, np.array(long._animation_frame(k).convert("RGB"))) for b, k in zip(back, kept))
    assert _durations(path)[:-1] == [2 * GIF_MS] * (GIF_FRAMES - 1)


def test_a_title_in_pieces_is_the_title_in_one():
    image = viz.grid(torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2)), scale=2)
    whole = np.array(viz.titled(image, "step 3/50: t = 940   (left to right: x_t, guess of x_0)", below=True))
    pieces = np.array(viz.titled(image, ("step 3/50: t = 940", "   (left to right: x_t, guess of x_0)"), below=True))
    assert whole.shape == pieces.shape
    assert np.array_equal(whole[: image.height], pieces[: image.height])  # the picture itself, untouched
    text = (whole < 128).sum(), (pieces < 128).sum()  # the same glyphs (within a sub-pixel shift at the seam)
    assert abs(int(text[0]) - int(text[1])) <= 0.02 * text[0] and text[0] > 200
