"""The encoding process, ready to run over the shipped models: generation from x_T ~ N(0, I) in the
latent, and the encode → noise to t → decode round trip of held-out examples. Validated requests, models
cached, and the registry entry `EncodingProcess`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from . import checkpoint, core, data, encoding, nets, text
from .data import ENCODING as ENCODING_DATA
from .data import encoding_data
from .device import make_generator
from .hot import GaussianForward, sampler_eta
from .pipeline import MAX_SAMPLES, Models, checkpoint_root, device_name
from .process import Choice, Process, check_choice, check_range, check_seed, check_steps, config_with, register
from .schedule import Schedule, make

MAX_TEMPERATURE = 5.0


def is_words(name: str) -> bool:
    return name != "mnist28"


def max_samples(name: str) -> int:
    return MAX_SAMPLES["words" if is_words(name) else "images"]


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
        check_choice(self.data, "dataset for the encoding model", ENCODING_DATA)
        check_choice(self.sampler, "sampler", encoding.SAMPLERS)
        sampler_eta(self.sampler, self.eta)
        if self.eta is not None:
            check_range(self.eta, "η", 0.0, 1.0)
        if self.steps < 1:
            raise ValueError(f"steps must be ≥ 1, got {self.steps}")
        check_range(self.n, "number of samples", 1, max_samples(self.data))
        check_seed(self.seed)
        check_range(self.temperature, "temperature", 0.0, MAX_TEMPERATURE)
        if self.temperature and not is_words(self.data):
            raise ValueError("temperature applies to words; digits use the decoder's mean")


@dataclass(frozen=True)
class LoadedEncoding:
    model: nets.EncodingModel
    config: dict
    schedule: Schedule

    @property
    def T(self) -> int:
        return self.schedule.T

    @property
    def forward(self) -> GaussianForward:
        return GaussianForward(self.schedule)


def _load(name: str, device: str) -> LoadedEncoding:
    net, cfg, _ = checkpoint.load(checkpoint_root() / f"encoding-{name}", torch.device(device))
    return LoadedEncoding(net, cfg, make(cfg["schedule"], cfg["T"]))


_models: Models[LoadedEncoding] = Models(_load)


def encoding_model(name: str, device: str | None = None) -> LoadedEncoding:
    """The shipped encoder + decoder for `name`, loaded once per device."""
    return _models(name, device=device)


def encoding_T(name: str) -> int:
    """T of the shipped model, from its config (nothing is loaded)."""
    return int(checkpoint.load_config(checkpoint_root() / f"encoding-{name}")["T"])


def encoding_plan(req: EncodingRequest, device: str | None = None) -> core.Plan:
    m = encoding_model(req.data, device)
    check_steps(req.steps, m.T)
    reverse = encoding.make_reverse(m.model, m.schedule, req.sampler, eta=req.eta, temperature=req.temperature)
    g = make_generator(req.seed, device_name(device))
    shape = (req.n, *encoding.latent_shape(m.model, m.config))
    return encoding.plan(m.model, reverse, shape, req.steps, g)


def decode(name: str, x: torch.Tensor) -> torch.Tensor | list[str]:
    """Model-space data → images in [0, 1] or strings."""
    return text.vocab(name).decode(x.cpu()) if is_words(name) else data.from_model(x).float().cpu()


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

    def scores(self) -> list[dict[str, float]]:
        """Per t, how much of x_0 survived (`encoding.reconstruction_scores`)."""
        return [encoding.reconstruction_scores(x, self.x0) for x in self.x0_hat]


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
    dev = torch.device(device_name(device))
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


class EncodingProcess(Process):
    name = "encoding"
    title = "the encoding model: a trained encoder F(x_0) and Gaussian diffusion in its latent"
    Request = EncodingRequest
    default_data = "mnist28"
    tab = ("Encoding", "udm.app.encoding:build")

    def datasets(self) -> tuple[str, ...]:
        return ENCODING_DATA

    def kind(self, data_name: str) -> str:
        return "words" if is_words(data_name) else "images"

    def max_samples(self, data_name: str) -> int:
        return max_samples(data_name)

    def choices(self, data_name: str) -> tuple[Choice, ...]:
        return tuple(Choice(s, steps=True, eta=s == "ddim") for s in encoding.SAMPLERS)

    def plan(self, req: EncodingRequest, device: str | None = None) -> core.Plan:
        return encoding_plan(req, device)

    def evaluations(self, choice, data_name, steps):
        """A decoder call per step and an encoder call per step but the last."""
        return 2 * self.total_steps(choice, data_name, steps) - 1

    def decode(self, data_name: str, x: torch.Tensor):
        return decode(data_name, x)

    def state(self, data_name: str, x_t: torch.Tensor) -> torch.Tensor:
        return x_t.float().cpu()  # a latent

    def shown_state(self, data_name: str, x_t: torch.Tensor):
        return None if is_words(data_name) else self.state(data_name, x_t)  # word latents are not drawn

    def train_config(self, data_name: str, small: bool = False, **overrides):
        from .train import encoding_config

        return config_with(encoding_config(data_name, small=small), self.name, **overrides)

    def train(self, cfg, out, progress: bool = True):
        from .train import train_encoding

        return train_encoding(cfg, out, progress=progress)

    def forget(self) -> None:
        _models.forget()
        projection.cache_clear()


register(EncodingProcess())
