"""Networks: a small time-conditioned MLP for 2-D points, diffusers' UNet2DModel for images.

Every network here maps (x (B, *shape), t (B,) integer timesteps in 1..T) to a tensor shaped like x.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


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
    """diffusers.UNet2DModel returning a plain tensor (its `.sample`)."""

    def __init__(self, **unet_kwargs: Any):
        super().__init__()
        from diffusers import UNet2DModel

        self.unet = UNet2DModel(**unet_kwargs)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t).sample


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


def build(kind: str, **kwargs: Any) -> nn.Module:
    """A network from its JSON-able description (the `net` entry of a checkpoint config)."""
    if kind == "mlp":
        return TimeMLP(**kwargs)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    if kind == "unet":
        return UNet(**kwargs)
    if kind == "restorer":
        return Restorer(**kwargs)
    raise ValueError(f"unknown network kind {kind!r}; valid: mlp, unet, restorer")
