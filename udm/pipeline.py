"""What every process's ready-made runs share: where checkpoints live, request-size caps, model space →
data space, and one locked cache of loaded models (`Models`).

Each process's pipeline (`hot_pipeline`, `cold_pipeline`, `text_pipeline`, `encoding_pipeline`) holds its
validated request, its loader and its registry entry (`udm.process`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import torch

from . import checkpoint, data
from .device import LOADING, default_device

MAX_SAMPLES = {"points": 4096, "images": 256, "words": 2048}  # per request: CPU-safe sizes
M = TypeVar("M")


def checkpoint_root() -> Path:
    """The checkpoint folder: `checkpoints/` beside the package, or `$UDM_CHECKPOINTS`."""
    return Path(os.environ.get("UDM_CHECKPOINTS", checkpoint.ROOT))


def device_name(device: str | torch.device | None) -> str:
    return str(torch.device(device) if device else default_device())


def to_data(name: str, x: torch.Tensor) -> torch.Tensor:
    """Model space → data space on the CPU: images in [0, 1], points as they are."""
    return (data.from_model(x) if data.is_image(name) else x).detach().float().cpu()


class Models(Generic[M]):
    """Models loaded once per (key, device) and kept: `load(*key, device)` runs under the one load lock
    (udm.device.LOADING), so a second caller waits for the first load and then finds the model cached."""

    def __init__(self, load: Callable[..., M]):
        self._load = load
        self._cache: dict[tuple, M] = {}

    def __call__(self, *key, device: str | torch.device | None = None) -> M:
        with LOADING:
            k = (*key, device_name(device))
            if k not in self._cache:
                self._cache[k] = self._load(*k)
            return self._cache[k]

    def forget(self) -> None:
        with LOADING:
            self._cache.clear()
