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

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as nnf
from torch import nn

from . import core
from .device import randn
from .hot import GaussianForward, HotReverse, sampler_eta
from .nets import timestep_embedding
from .schedule import Schedule, respace

SAMPLERS: tuple[str, ...] = ("ddpm", "ddim")
Kind = Literal["image", "words"]


def normalise(z: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Scale z to unit root-mean-square over `dims`.

    Why: F is trained jointly with the decoder, and nothing else bounds its scale. Multiplying F by c
    multiplies the signal-to-noise ratio ᾱ_t² c² / β̄_t² at every t by c², so the loss falls simply by
    growing F until the noise no longer matters: x_t stops being a diffusion, x_T is far from N(0, I),
    and sampling from the prior fails (Diffusion-LM, Li et al. 2022, §4.1, meets the same problem with
    learned word embeddings). With unit RMS the latent has the scale of ε, as data for a Gaussian
    diffusion should.
    """
    rms = z.pow(2).mean(dim=dims, keepdim=True).add(1e-8).sqrt()
    return z / rms


# ---------------------------------------------------------------- networks
class ResBlock(nn.Module):
    def __init__(self, channels: int, temb: int = 0):
        super().__init__()
        groups = 8 if channels % 8 == 0 else 1
        self.n1, self.c1 = nn.GroupNorm(groups, channels), nn.Conv2d(channels, channels, 3, padding=1)
        self.n2, self.c2 = nn.GroupNorm(groups, channels), nn.Conv2d(channels, channels, 3, padding=1)
        self.t = nn.Linear(temb, channels) if temb else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.c1(nnf.silu(self.n1(x)))
        if self.t is not None and emb is not None:
            h = h + self.t(emb)[:, :, None, None]
        return x + self.c2(nnf.silu(self.n2(h)))


class ImageEncoder(nn.Module):
    """28×28 → (C, 7, 7), unit RMS per example."""

    def __init__(self, latent: int = 4, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),  # 14×14
            ResBlock(2 * width),
            nn.Conv2d(2 * width, 2 * width, 4, stride=2, padding=1),  # 7×7
            ResBlock(2 * width),
            nn.SiLU(),
            nn.Conv2d(2 * width, latent, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return normalise(self.body(x), (1, 2, 3))


class ImageDecoder(nn.Module):
    """(noisy latent (C, 7, 7), t) → the mean of q(x_0 | x_t), a 28×28 image."""

    def __init__(self, latent: int = 4, width: int = 32, temb: int = 64):
        super().__init__()
        w = 2 * width
        self.temb = temb
        self.time = nn.Sequential(nn.Linear(temb, 2 * temb), nn.SiLU(), nn.Linear(2 * temb, 2 * temb))
        self.inp = nn.Conv2d(latent, 2 * w, 3, padding=1)
        self.low = nn.ModuleList([ResBlock(2 * w, 2 * temb), ResBlock(2 * w, 2 * temb)])
        self.up1 = nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1)  # 14×14
        self.mid = ResBlock(w, 2 * temb)
        self.up2 = nn.ConvTranspose2d(w, width, 4, stride=2, padding=1)  # 28×28
        self.high = ResBlock(width, 2 * temb)
        self.out = nn.Sequential(nn.GroupNorm(8, width), nn.SiLU(), nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time(timestep_embedding(t, self.temb))
        h = self.inp(z_t)
        for block in self.low:
            h = block(h, emb)
        h = self.mid(self.up1(h), emb)
        h = self.high(self.up2(h), emb)
        return self.out(h)


class WordEncoder(nn.Module):
    """Tokens (l,) → (l, d): embedding + position + a small Transformer; unit RMS per position."""

    def __init__(self, vocab: int, length: int, dim: int = 16, hidden: int = 64, layers: int = 1, heads: int = 4):
        super().__init__()
        self.tok = nn.Embedding(vocab, hidden)
        self.pos = nn.Parameter(0.02 * torch.randn(length, hidden))
        layer = nn.TransformerEncoderLayer(
            hidden, heads, 2 * hidden, dropout=0.0, batch_first=True, norm_first=True, activation="gelu"
        )
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return normalise(self.out(self.body(self.tok(x) + self.pos)), (2,))


class WordDecoder(nn.Module):
    """(noisy latent (l, d), t) → per-position character logits (l, V): a BertForMaskedLM reading the
    projected latents as its input embeddings, after one time token."""

    def __init__(self, vocab: int, length: int, dim: int = 16, temb: int = 64, **bert: Any):
        super().__init__()
        from transformers import BertConfig, BertForMaskedLM

        cfg = BertConfig(
            vocab_size=vocab,
            max_position_embeddings=length + 1,
            type_vocab_size=1,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            **bert,
        )
        self.temb = temb
        self.bert = BertForMaskedLM(cfg)
        self.time = nn.Sequential(
            nn.Linear(temb, cfg.hidden_size), nn.SiLU(), nn.Linear(cfg.hidden_size, cfg.hidden_size)
        )
        self.inp = nn.Linear(dim, cfg.hidden_size)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.time(timestep_embedding(t, self.temb))[:, None], self.inp(z_t)], 1)
        return self.bert(inputs_embeds=h).logits[:, 1:]


class EncodingModel(nn.Module):
    """F and the decoder of q(x_0 | x_t), trained and saved together."""

    def __init__(self, kind: Kind, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.kind = kind
        self.encoder, self.decoder = encoder, decoder

    def encode(self, x0: torch.Tensor) -> torch.Tensor:
        return self.encoder(x0)

    def decode(self, z_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.decoder(z_t, t)


def net_config(kind: Kind, *, vocab: int = 0, length: int = 0, small: bool = False) -> dict[str, Any]:
    """The JSON-able description `build` takes; `small` for tests."""
    if kind == "image":
        return {"kind": "image", "latent": 4, "width": 8 if small else 16}
    bert = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    if not small:
        bert = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512)
    return {
        "kind": "words",
        "vocab": vocab,
        "length": length,
        "dim": 16,
        "hidden": 16 if small else 64,
        "bert": bert,
    }


def build(kind: Kind, **kw: Any) -> EncodingModel:
    if kind == "image":
        return EncodingModel("image", ImageEncoder(kw["latent"], kw["width"]), ImageDecoder(kw["latent"], kw["width"]))
    if kind == "words":
        v, n, d = kw["vocab"], kw["length"], kw["dim"]
        return EncodingModel("words", WordEncoder(v, n, d, kw["hidden"]), WordDecoder(v, n, d, **kw["bert"]))
    raise ValueError(f"unknown encoding network kind {kind!r}; valid: image, words")


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
        if model.kind == "words":
            row["char_accuracy"] = round((dec.argmax(-1) == x0).float().mean().item(), 4)
            row["word_accuracy"] = round((dec.argmax(-1) == x0).all(1).float().mean().item(), 4)
        else:
            err = ((dec.clamp(-1, 1) - x0) / 2).abs().mean().item()
            mse = ((dec.clamp(-1, 1) - x0) / 2).pow(2).mean().item()
            row["pixel_l1"] = round(err, 4)
            row["psnr"] = round(-10 * torch.log10(torch.tensor(max(mse, 1e-12))).item(), 2)
        out["per_t"][str(t)] = row
    return out


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


def sample(
    model: EncodingModel, reverse: EncodingReverse, shape: tuple[int, ...], steps: int, generator: torch.Generator
) -> Iterator[core.Step]:
    """The step records of `plan(...)`."""
    return plan(model, reverse, shape, steps, generator).steps()
