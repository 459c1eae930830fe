"""The encoding model (UDM.md §6): hot diffusion in the latent of a learned encoder F.

1. forward     x_t = ᾱ_t F(x_0) + β̄_t ε, F a trained encoder with a normalised output  (`EncodingModel.encode`)
2. posterior   q(x_0 | x_t): a decoder from the noisy latent and t to x_0 — a Gaussian mean for images
               (L2 loss), per-position categorical logits for words (cross-entropy)      (`DecoderPosterior`)
3. reverse     x̂_0 ~ q(x_0 | x_t), re-encode F(x̂_0), then the hot DDPM / DDIM step in the latent; the
               last step (s = 0) returns x̂_0 itself, not a latent                       (`EncodingReverse`)

F and the decoder are trained jointly on −log q(x_0 | ᾱ_t F(x_0) + β̄_t ε), t ~ U{1..T}.

Shapes: images x_0 (B, 1, 28, 28) in [-1, 1] ↔ latent (B, C, 7, 7); words x_0 (B, l) tokens ↔ latent (B, l, d).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as nnf

from . import core
from .device import randn
from .hot import GaussianForward, HotReverse, sampler_eta
from .nets import EncodingModel
from .schedule import Schedule, respace

SAMPLERS: tuple[str, ...] = ("ddpm", "ddim")


# ---------------------------------------------------------------- training objective and diagnostics
def decoder_loss(model: EncodingModel, out: torch.Tensor, x0: torch.Tensor, reduce: bool = True) -> torch.Tensor:
    """−log q(x_0 | x_t) up to constants: squared error (images) or cross-entropy (words), per example
    when `reduce` is False."""
    if model.kind == "image":
        err = (out - x0).pow(2).flatten(1).mean(1)
    else:
        err = nnf.cross_entropy(out.transpose(1, 2), x0, reduction="none").mean(1)
    return err.mean() if reduce else err


def loss(
    model: EncodingModel, forward: GaussianForward, x0: torch.Tensor, t: torch.Tensor | None = None
) -> torch.Tensor:
    """The joint objective: t ~ U{1..T}, x_t = ᾱ_t F(x_0) + β̄_t ε, loss −log q(x_0 | x_t)."""
    if t is None:
        t = torch.randint(1, forward.T + 1, (x0.shape[0],), device=x0.device)
    z = model.encode(x0)
    z_t = forward.sample(z, t, torch.randn_like(z))
    return decoder_loss(model, model.decode(z_t, t), x0)


@torch.no_grad()
def reconstruct(
    model: EncodingModel, forward: GaussianForward, x0: torch.Tensor, t: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode, noise to t, decode: (x_t latent, the decoder's output — image mean or logits)."""
    z = model.encode(x0)
    z_t = forward.sample(z, t, randn(z.shape, generator).to(z.device))
    return z_t, model.decode(z_t, torch.full((len(x0),), t, device=z.device, dtype=torch.long))


@torch.no_grad()
def diagnostics(
    model: EncodingModel, forward: GaussianForward, x0: torch.Tensor, ts: list[int], seed: int = 0
) -> dict[str, Any]:
    """On held-out x_0: the latent's RMS and the encoder's spread, and per t the loss and the
    reconstruction figure (words: character accuracy of the argmax; images: mean absolute pixel error on
    [0, 1] and PSNR)."""
    g = torch.Generator(device=x0.device).manual_seed(seed)
    z = model.encode(x0)
    dims = tuple(range(1, z.dim()))
    out: dict[str, Any] = {
        "latent_rms": round(z.pow(2).mean().sqrt().item(), 4),
        "latent_std_over_data": round(z.std(0).mean().item(), 4),  # 0 would mean F ignores x_0
        "latent_rms_per_example_max_dev": round((z.pow(2).mean(dims).sqrt() - 1).abs().max().item(), 6)
        if model.kind == "image"
        else round((z.pow(2).mean(-1).sqrt() - 1).abs().max().item(), 6),
        "per_t": {},
    }
    for t in ts:
        _, dec = reconstruct(model, forward, x0, t, g)
        row = {"loss": round(decoder_loss(model, dec, x0).item(), 4)}
        x0_hat = dec.argmax(-1) if model.kind == "words" else dec.clamp(-1, 1)
        row.update({k: round(v, 2 if k == "psnr" else 4) for k, v in reconstruction_scores(x0_hat, x0).items()})
        out["per_t"][str(t)] = row
    return out


def reconstruction_scores(x0_hat: torch.Tensor, x0: torch.Tensor) -> dict[str, float]:
    """How much of x_0 a reconstruction x̂_0 keeps: words (tokens (B, l)) their character and word
    accuracy; images (in [-1, 1]) the mean absolute pixel error on [0, 1] and the PSNR."""
    if not x0.is_floating_point():
        same = x0_hat == x0
        return {"char_accuracy": same.float().mean().item(), "word_accuracy": same.all(1).float().mean().item()}
    err = (x0_hat - x0) / 2
    mse = err.pow(2).mean().item()
    return {"pixel_l1": err.abs().mean().item(), "psnr": -10 * torch.log10(torch.tensor(max(mse, 1e-12))).item()}


# ---------------------------------------------------------------- posterior and reverse
@dataclass(frozen=True)
class DecoderPosterior:
    """q(x_0 | x_t): the decoder's output for a latent x_t at an int t (image mean or character logits)."""

    model: EncodingModel

    def __call__(self, z_t: torch.Tensor, t: int) -> torch.Tensor:
        return self.model.decode(z_t, torch.full((z_t.shape[0],), t, device=z_t.device, dtype=torch.long))


@dataclass(frozen=True)
class EncodingReverse:
    """x̂_0 from the decoder (images: its mean, σ̄ = 0 as in DDPM; words: a draw from the categorical at
    `temperature`, 0 = argmax), then the hot step with F(x̂_0) standing for x_0 in the latent; at s = 0
    the step returns x̂_0 itself (data, not a latent)."""

    model: EncodingModel
    hot: HotReverse
    temperature: float = 1.0

    def predict_x0(
        self, posterior: DecoderPosterior, z_t: torch.Tensor, t: int, s: int, generator: torch.Generator
    ) -> torch.Tensor:
        out = posterior(z_t, t)
        if self.model.kind == "image":
            return out.clamp(-1, 1)
        if self.temperature == 0:
            return out.argmax(-1)
        probs = torch.softmax(out.float() / self.temperature, -1)
        u = torch.rand(probs.shape[:-1] + (1,), generator=generator, device=generator.device).to(probs.device)
        return (probs.cumsum(-1) < u).sum(-1).clamp_max(probs.shape[-1] - 1)  # inverse-CDF draw

    def step(self, z_t: torch.Tensor, x0_hat: torch.Tensor, t: int, s: int, generator: torch.Generator) -> torch.Tensor:
        if s == 0:
            return x0_hat
        return self.hot.step(z_t, self.model.encode(x0_hat), t, s, generator)


def make_reverse(
    model: EncodingModel, schedule: Schedule, name: str, *, eta: float | None = None, temperature: float = 1.0
) -> EncodingReverse:
    if name not in SAMPLERS:
        raise ValueError(f"unknown encoding sampler {name!r}; valid: {', '.join(SAMPLERS)}")
    if not 0 <= temperature <= 5:
        raise ValueError(f"temperature must be in [0, 5], got {temperature}")
    return EncodingReverse(model, HotReverse(schedule, eta=sampler_eta(name, eta)), temperature)


def latent_shape(model: EncodingModel, config: dict[str, Any]) -> tuple[int, ...]:
    net = config["net"]
    return (net["latent"], 7, 7) if model.kind == "image" else (net["length"], net["dim"])


def plan(
    model: EncodingModel, reverse: EncodingReverse, shape: tuple[int, ...], steps: int, generator: torch.Generator
) -> core.Plan:
    """A run from x_T ~ N(0, I) in the latent (B, …) through `steps` respaced timesteps."""
    x_T = randn(shape, generator)  # on the generator's device, which is the model's
    taus = tuple(respace(reverse.hot.schedule.T, steps))
    return core.Plan(DecoderPosterior(model), reverse, x_T, taus, generator)
