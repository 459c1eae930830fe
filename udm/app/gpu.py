"""Hugging Face ZeroGPU: where the `spaces` package is importable, the functions that run networks are
wrapped with `spaces.GPU` (a GPU is attached for the length of a call); anywhere else they are returned
unchanged, and the device is simply CUDA when present, else the CPU (`udm.device`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)
GPU_SECONDS = 120  # the longest call a Space asks a GPU for


def on_gpu(fn: F) -> F:
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=GPU_SECONDS)(fn)
