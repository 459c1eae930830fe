"""Device and dtype handling, in one place: CUDA when present, else the CPU; float32 throughout."""

from __future__ import annotations

import threading

import torch

DTYPE = torch.float32
# One lock for every model load and every first import of diffusers / transformers: their lazy module
# imports are not thread-safe, and two users' first requests would otherwise import them at once.
LOADING = threading.RLock()


def default_device() -> torch.device:
    """The device every model and sampler uses unless told otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_generator(seed: int, device: torch.device | str | None = None) -> torch.Generator:
    """A seeded generator on `device`; all sampling randomness goes through one of these."""
    g = torch.Generator(device=torch.device(device) if device is not None else default_device())
    g.manual_seed(int(seed))
    return g


def randn(shape, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise drawn on the generator's device. A seed gives the same numbers on the same
    kind of device (CPU runs are bit-for-bit repeatable; a CUDA generator draws other numbers)."""
    return torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=DTYPE)
