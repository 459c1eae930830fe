"""The networks, together: a small time-conditioned MLP for 2-D points, diffusers' UNet2DModel for images
(ε-models and cold diffusion's restorer), the encoding model's encoder F and decoder, and the BERT of the
text posteriors. `build(**config["net"])` makes any of them from a checkpoint's JSON description.

An ε-model or restorer maps (x (B, *shape), t (B,) integer timesteps in 1..T) to a tensor shaped like x.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as nnf
from torch import nn

Kind = Literal["image", "words"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding (B,) → (B, dim), as in the Transformer and DDPM."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=1)


class TimeMLP(nn.Module):
    """ε_θ(x_t, t) for low-dimensional data: residual SiLU blocks over [x, emb(t)]."""

    def __init__(self, dim: int = 2, hidden: int = 256, depth: int = 4, temb: int = 64):
        super().__init__()
        self.temb = temb
        self.inp = nn.Linear(dim + temb, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
            for _ in range(depth)
        )
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.inp(torch.cat([x, timestep_embedding(t, self.temb)], 1))  # (B, hidden)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


class UNet(nn.Module):
    """diffusers.UNet2DModel returning a plain tensor (its `.sample`). `t_scale` spreads t in 1..T over
    1..1000 for a short T, so the sinusoidal time embedding sees the range it was made for.

    A UNet with `time_embedding_type="learned"` (how hot checkpoints are saved: `with_time_table`) holds
    the embedding of t in its table row t − 1, and is called with t − 1: diffusers' timestep."""

    def __init__(self, t_scale: int = 1, unet: Any = None, **unet_kwargs: Any):
        super().__init__()
        from diffusers import UNet2DModel

        self.t_scale = t_scale
        self.unet = unet if unet is not None else UNet2DModel(**unet_kwargs)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.unet.config.time_embedding_type == "learned":
            return self.unet(x, t - 1).sample
        return self.unet(x, t * self.t_scale if self.t_scale != 1 else t).sample


def with_time_table(model: UNet, T: int) -> UNet:
    """The same network with its sinusoidal time embedding written out as a table of T rows (diffusers'
    `time_embedding_type="learned"`), row td holding the embedding of udm's t = td + 1. diffusers'
    pipelines, which call the UNet with their timestep td = t − 1, then compute exactly what udm does."""
    from diffusers import UNet2DModel

    unet = model.unet
    if unet.config.time_embedding_type == "learned":
        return model
    if unet.config.time_embedding_type != "positional":
        raise ValueError(f"cannot tabulate a {unet.config.time_embedding_type!r} time embedding")
    config = {k: v for k, v in unet.config.items() if not k.startswith("_")}
    table = UNet2DModel(**{**config, "time_embedding_type": "learned", "num_train_timesteps": T})
    table = table.to(next(unet.parameters()).device)
    state = dict(unet.state_dict())
    with torch.no_grad():
        t = torch.arange(1, T + 1, device=next(unet.parameters()).device) * model.t_scale
        state["time_proj.weight"] = unet.time_proj(t).to(table.time_proj.weight.dtype)
    table.load_state_dict(state)
    return UNet(unet=table).train(model.training)


class Restorer(nn.Module):
    """G_t(x_t) = x_t + UNet(x_t, t, variant) for cold diffusion: one UNet for several degradations
    (`variant` picks a learned class embedding added to the time embedding). t in 1..T is spread over
    1..1000 so the sinusoidal time embedding sees the same range as in hot diffusion."""

    def __init__(self, T: int, variants: int, **unet_kwargs: Any):
        super().__init__()
        from diffusers import UNet2DModel

        self.T = T
        self.unet = UNet2DModel(num_class_embeds=variants, **unet_kwargs)

    def forward(self, x: torch.Tensor, t: torch.Tensor, variant: torch.Tensor) -> torch.Tensor:
        return x + self.unet(x, t * (1000 // self.T), class_labels=variant).sample


def unet_config(sample_size: int, small: bool = False) -> dict[str, Any]:
    """UNet2DModel arguments sized for this CPU: 16-32-64 channels, attention only at the coarsest level.

    The 28×28 net trains at ~0.7 s per batch of 128 on 2 cores; `small` is for tests.
    """
    if small:
        return dict(
            sample_size=sample_size,
            in_channels=1,
            out_channels=1,
            layers_per_block=1,
            block_out_channels=(8, 16),
            norm_num_groups=4,
            down_block_types=("DownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "UpBlock2D"),
        )
    deep = sample_size >= 16  # 28 → 14 → 7; an 8×8 image gets two levels
    channels = (16, 32, 64) if deep else (32, 64)
    down = ("DownBlock2D",) * (len(channels) - 1) + ("AttnDownBlock2D",)
    up = ("AttnUpBlock2D",) + ("UpBlock2D",) * (len(channels) - 1)
    return dict(
        sample_size=sample_size,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=channels,
        norm_num_groups=8,
        down_block_types=down,
        up_block_types=up,
    )


# ---------------------------------------------------------------- BERT (the text posteriors, the word decoder)
def bert_size(small: bool = False, width: int = 128, layers: int = 4) -> dict[str, int]:
    """`layers` of `width` (4 × 128: about 1 M parameters, trains in under an hour here); `small` for tests."""
    if small:
        return dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    return dict(
        hidden_size=width, num_hidden_layers=layers, num_attention_heads=width // 32, intermediate_size=4 * width
    )


def bert_mlm(vocab_size: int, positions: int, dropout: float = 0.0, **size: int):
    """A `transformers.BertForMaskedLM` built from its config (nothing downloads); `dropout` (hidden and
    attention) acts in training only."""
    from transformers import BertConfig, BertForMaskedLM

    cfg = BertConfig(
        vocab_size=vocab_size,
        max_position_embeddings=positions,
        type_vocab_size=1,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        **size,
    )
    return BertForMaskedLM(cfg)


# ---------------------------------------------------------------- the encoding model: F and the decoder
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
        self.temb = temb
        self.bert = bert_mlm(vocab, length + 1, **bert)
        cfg = self.bert.config
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


def encoding_config(kind: Kind, *, vocab: int = 0, length: int = 0, small: bool = False) -> dict[str, Any]:
    """The JSON-able description of an encoding model (`build`); `small` for tests."""
    if kind == "image":
        return {"kind": "image", "latent": 4, "width": 8 if small else 16}
    return {
        "kind": "words",
        "vocab": vocab,
        "length": length,
        "dim": 16,
        "hidden": 16 if small else 64,
        "bert": bert_size(small),
    }


def build_encoding(kind: Kind, **kw: Any) -> EncodingModel:
    if kind == "image":
        return EncodingModel("image", ImageEncoder(kw["latent"], kw["width"]), ImageDecoder(kw["latent"], kw["width"]))
    if kind == "words":
        v, n, d = kw["vocab"], kw["length"], kw["dim"]
        return EncodingModel("words", WordEncoder(v, n, d, kw["hidden"]), WordDecoder(v, n, d, **kw["bert"]))
    raise ValueError(f"unknown encoding network kind {kind!r}; valid: image, words")


def build(kind: str, **kwargs: Any) -> nn.Module:
    """A network from its JSON-able description (the `net` entry of a checkpoint config)."""
    if kind == "mlp":
        return TimeMLP(**kwargs)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    if kind == "unet":
        return UNet(**kwargs)
    if kind == "restorer":
        return Restorer(**kwargs)
    if kind in ("image", "words"):
        return build_encoding(kind, **kwargs)
    if kind == "bert":
        return bert_mlm(kwargs.pop("vocab_size"), kwargs.pop("positions"), **kwargs)
    raise ValueError(f"unknown network kind {kind!r}; valid: mlp, unet, restorer, image, words, bert")
