"""Ready-made runs of the shipped encoding models: generation from x_T ~ N(0, I) in the latent, and the
encode → noise to t → decode round trip of held-out examples. Validated requests; models cached.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

import torch

from . import checkpoint, core, data, encoding, text
from .device import LOADING, default_device, make_generator
from .hot import GaussianForward
from .pipeline import MAX_SAMPLES, checkpoint_root
from .schedule import Schedule, make
from .text_pipeline import MAX_TEXT_SAMPLES
from .train import ENCODING_DATA, encoding_data

MAX_TEMPERATURE = 5.0


def is_words(name: str) -> bool:
    return name != "mnist28"


def max_samples(name: str) -> int:
    return MAX_TEXT_SAMPLES if is_words(name) else MAX_SAMPLES["images"]


@dataclass(frozen=True)
class EncodingRequest:
    """One generation run: `steps` respaced DDPM / DDIM steps in the latent, n samples."""

    data: str = "mnist28"
    sampler: str = "ddim"
    steps: int = 50
    n: int = 16
    seed: int = 0
    eta: float | None = None
    temperature: float = 0.0  # words: x̂_0 drawn from q at this temperature; 0 = its argmax

    def __post_init__(self) -> None:
        if self.data not in ENCODING_DATA:
            raise ValueError(f"unknown dataset {self.data!r} for the encoding model; valid: {', '.join(ENCODING_DATA)}")
        if self.sampler not in encoding.SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; valid: {', '.join(encoding.SAMPLERS)}")
        if self.sampler == "ddpm" and self.eta not in (None, 1.0):
            raise ValueError("eta applies to ddim; ddpm is eta = 1")
        if self.eta is not None and not 0 <= self.eta <= 1:
            raise ValueError(f"eta must be in [0, 1], got {self.eta}")
        if not 1 <= self.steps:
            raise ValueError(f"steps must be ≥ 1, got {self.steps}")
        cap = max_samples(self.data)
        if not 1 <= self.n <= cap:
            raise ValueError(f"number of samples must be between 1 and {cap}, got {self.n}")
        if not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a non-negative integer below 2^63, got {self.seed}")
        if not 0 <= self.temperature <= MAX_TEMPERATURE:
            raise ValueError(f"temperature must be between 0 and {MAX_TEMPERATURE}, got {self.temperature}")
        if self.temperature and not is_words(self.data):
            raise ValueError("temperature applies to words; digits use the decoder's mean")


@dataclass(frozen=True)
class LoadedEncoding:
    model: encoding.EncodingModel
    config: dict
    schedule: Schedule

    @property
    def T(self) -> int:
        return self.schedule.T

    @property
    def forward(self) -> GaussianForward:
        return GaussianForward(self.schedule)


_LOADING = LOADING  # shared by every loader (udm.device)


def encoding_model(name: str, device: str | None = None) -> LoadedEncoding:
    """The shipped encoder + decoder for `name`, loaded once per device."""
    with _LOADING:
        return _encoding_model(name, str(torch.device(device) if device else default_device()))


@lru_cache(maxsize=None)
def _encoding_model(name: str, device: str) -> LoadedEncoding:
    net, cfg, _ = checkpoint.load(checkpoint_root() / f"encoding-{name}", torch.device(device))
    return LoadedEncoding(net, cfg, make(cfg["schedule"], cfg["T"]))


def encoding_T(name: str) -> int:
    """T of the shipped model, from its config (nothing is loaded)."""
    return int(checkpoint.load_config(checkpoint_root() / f"encoding-{name}")["T"])


def forget_models() -> None:
    _encoding_model.cache_clear()
    projection.cache_clear()


def encoding_steps(req: EncodingRequest, device: str | None = None) -> Iterator[core.Step]:
    """The step records: x_t latents (B, …) and x̂_0 data (images in [-1, 1] or tokens); the last x_s is data."""
    return encoding_plan(req, device).steps()


def encoding_plan(req: EncodingRequest, device: str | None = None) -> core.Plan:
    m = encoding_model(req.data, device)
    if req.steps > m.T:
        raise ValueError(f"steps must be between 1 and T={m.T}, got {req.steps}")
    reverse = encoding.make_reverse(m.model, m.schedule, req.sampler, eta=req.eta, temperature=req.temperature)
    g = make_generator(req.seed, torch.device(device) if device else default_device())
    shape = (req.n, *encoding.latent_shape(m.model, m.config))
    return encoding.plan(m.model, reverse, shape, req.steps, g)


def decode(name: str, x: torch.Tensor) -> torch.Tensor | list[str]:
    """Model-space data → images in [0, 1] or strings."""
    return text.vocab(name).decode(x.cpu()) if is_words(name) else data.from_model(x).float().cpu()


def many(req: EncodingRequest, n: int, device: str | None = None) -> torch.Tensor | list[str]:
    """n final samples (images in [0, 1] or strings), in request-sized batches with seeds seed, seed+1, …"""
    batch, chunks = max_samples(req.data), []
    for i, start in enumerate(range(0, n, batch)):
        r = replace(req, n=min(batch, n - start), seed=req.seed + i)
        chunks.append(decode(req.data, core.last(encoding_steps(r, device)).x_s))
    return sum(chunks, []) if is_words(req.data) else torch.cat(chunks)


def held_out(name: str, first: int, n: int) -> torch.Tensor:
    x = encoding_data(name, "test")
    if not 0 <= first or first + n > len(x):
        raise ValueError(f"there are {len(x)} held-out examples; asked for {first}..{first + n - 1}")
    return x[first : first + n]


@dataclass(frozen=True)
class RoundTrip:
    """Encode held-out x_0, noise to each t, decode: x_0, and per t the latent x_t and x̂_0 (its mean or argmax)."""

    x0: torch.Tensor
    ts: list[int]
    latents: list[torch.Tensor]
    x0_hat: list[torch.Tensor]


def round_trip(
    name: str,
    ts: list[int],
    *,
    first: int = 0,
    n: int = 8,
    seed: int = 0,
    device: str | None = None,
    x0: torch.Tensor | None = None,
) -> RoundTrip:
    """Encode examples (held-out ones first … first + n − 1, or `x0` in model space when given), noise
    the latent to each t and decode."""
    m = encoding_model(name, device)
    bad = [t for t in ts if not 1 <= t <= m.T]
    if bad:
        raise ValueError(f"t must be between 1 and T={m.T}, got {bad[0]}")
    cap = max_samples(name)
    if not 1 <= n <= cap:
        raise ValueError(f"number of examples must be between 1 and {cap}, got {n}")
    dev = torch.device(device) if device else default_device()
    x0 = held_out(name, first, n).to(dev) if x0 is None else x0.to(dev)
    g = make_generator(seed, dev)
    latents, outs = [], []
    for t in ts:
        z_t, dec = encoding.reconstruct(m.model, m.forward, x0, t, g)
        latents.append(z_t)
        outs.append(dec.argmax(-1) if is_words(name) else dec.clamp(-1, 1))
    return RoundTrip(x0, list(ts), latents, outs)


@dataclass(frozen=True)
class Projection:
    """A fixed 2-D view of word latents: PCA of F's per-position outputs on the training words, with
    each character's mean latent as a labelled anchor."""

    mean: torch.Tensor  # (d,)
    axes: torch.Tensor  # (d, 2)
    anchors: tuple[tuple[str, float, float], ...]

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """(…, d) → (…, 2)."""
        return (z.float().cpu() - self.mean) @ self.axes


@lru_cache(maxsize=None)
def projection(name: str, device: str = "cpu", n: int = 4000) -> Projection:
    m = encoding_model(name, device)
    x0 = encoding_data(name)[:n]
    with torch.no_grad():
        z = m.model.encode(x0.to(device)).float().cpu()  # (n, l, d)
    flat = z.reshape(-1, z.shape[-1])
    mean = flat.mean(0)
    _, _, v = torch.linalg.svd(flat - mean, full_matrices=False)
    axes = v[:2].T.contiguous()
    chars, tokens = text.vocab(name).chars, x0.reshape(-1)
    anchors = []
    for i, c in enumerate(chars):
        sel = tokens == i
        if sel.any():
            x, y = ((flat[sel].mean(0) - mean) @ axes).tolist()
            anchors.append((c, x, y))
    return Projection(mean, axes, tuple(anchors))
