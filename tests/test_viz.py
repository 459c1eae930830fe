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


def test_a_trajectorys_animation_has_every_frame():
    from functools import partial

    from udm.app import hot
    from udm.app.common import Trajectory

    traj = Trajectory(render=partial(hot._picture, "mnist28"))
    g = torch.Generator().manual_seed(1)
    for k in range(12):
        traj.add(
            f"step {k + 1}/12: t = {12 - k}",
            torch.rand(4, 1, 28, 28, generator=g),
            torch.rand(4, 1, 28, 28, generator=g),
        )
    back = _frames_of(open(traj.gif(), "rb").read())
    expected = [np.array(traj._animation_frame(k).convert("RGB")) for k in range(12)]
    assert len(back) == 12 and all(np.array_equal(b, e) for b, e in zip(back, expected))
