"""Quality judges: a small MNIST CNN (confident share, Fréchet distance of its penultimate features)
and the sliced Wasserstein distance for 2-D points.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import checkpoint, data

CONFIDENT = 0.9  # a sample counts as a clear digit when the judge's top class has p ≥ this


class DigitCNN(nn.Module):
    """28×28 → 10 classes; `features` is the 128-d penultimate layer used for the Fréchet distance."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(),
        )
        self.head = nn.Linear(128, 10)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """img (B, 1, 28, 28) in [0, 1] → (B, 128)."""
        return self.body(img * 2 - 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(img))


def train_classifier(out: Path, *, epochs: int = 8, seed: int = 0) -> dict:
    """Train on the 90 % split with small random shifts; save safetensors + config + card."""
    torch.manual_seed(seed)
    x, y = data.images("mnist28", "train")
    xt, yt = data.images("mnist28", "test")
    model, start = DigitCNN(), time.time()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x)).split(64):
            dx, dy = torch.randint(-2, 3, (2,)).tolist()
            batch = torch.roll(x[idx], shifts=(dx, dy), dims=(2, 3))
            loss = nn.functional.cross_entropy(model(batch), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    summary = {"epochs": epochs, "seconds": round(time.time() - start, 1), "test_accuracy": round(acc, 4)}
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    save_file(model.state_dict(), str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps({"kind": "digit-cnn", "data": "mnist28", **summary}, indent=2) + "\n")
    (out / "README.md").write_text(
        "# judge-mnist28\n\nA small CNN (2 conv + 2 linear layers) trained on the 90 % split of `mnist28` "
        f"(4,500 digits, random ±2-pixel shifts), {epochs} epochs, {summary['seconds']} s on the CPU. "
        f"Held-out accuracy: {acc:.2%} on 500 digits.\n\nUsed as the quality judge: the share of samples "
        f"classified with confidence ≥ {CONFIDENT}, and the Fréchet distance of its 128-d penultimate features "
        "to the held-out digits.\n\nRebuild: `python -m udm judge`.\n"
    )
    return summary


def load_classifier(folder: Path | None = None) -> DigitCNN:
    from safetensors.torch import load_file

    model = DigitCNN()
    model.load_state_dict(load_file(str((folder or checkpoint.path("judge-mnist28")) / "model.safetensors")))
    return model.eval()


@torch.no_grad()
def digit_scores(model: DigitCNN, samples: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """Confident share and Fréchet distance of `samples` (N, 1, 28, 28) in [0, 1] against `reference`."""
    feats, ref = model.features(samples.cpu()), model.features(reference.cpu())
    probs = model.head(feats).softmax(1)
    return {
        "confident": probs.max(1).values.ge(CONFIDENT).float().mean().item(),
        "frechet": frechet(feats.double().numpy(), ref.double().numpy()),
    }


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (N, D) and b (M, D)."""
    return frechet_gaussians(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def frechet_gaussians(mu1: np.ndarray, c1: np.ndarray, mu2: np.ndarray, c2: np.ndarray) -> float:
    """‖μ1 - μ2‖² + tr(C1 + C2 - 2 (C1 C2)^{1/2}): the 2-Wasserstein² distance of two Gaussians."""
    from scipy import linalg

    # Dead ReLU features make the covariances singular: regularise both by 1e-6 I, in the trace as in the
    # square root, so that identical sets still measure 0.
    eye = np.eye(len(c1)) * 1e-6
    c1, c2 = c1 + eye, c2 + eye
    covmean = linalg.sqrtm(c1 @ c2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * covmean))


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, *, projections: int = 256, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance between point sets a (N, d) and b (M, d); for N ≠ M each projection's
    quantile functions are compared on a common grid."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"point sets must be (N, d) and (M, d), got {tuple(a.shape)} and {tuple(b.shape)}")
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(a.shape[1], projections, generator=g, dtype=torch.float64)
    dirs /= dirs.norm(dim=0, keepdim=True)
    pa, pb = (a.double().cpu() @ dirs).sort(0).values, (b.double().cpu() @ dirs).sort(0).values
    if len(pa) != len(pb):
        n = max(len(pa), len(pb))
        pa, pb = _quantiles(pa, n), _quantiles(pb, n)
    return (pa - pb).pow(2).mean().sqrt().item()


def _quantiles(sorted_cols: torch.Tensor, n: int) -> torch.Tensor:
    """Sorted columns (N, P) → their empirical quantile functions at the n midpoints (i + ½)/n."""
    idx = ((torch.arange(n, dtype=torch.float64) + 0.5) / n * len(sorted_cols)).floor().long()
    return sorted_cols[idx.clamp_max(len(sorted_cols) - 1)]


def mixture_distance(x: torch.Tensor, mixture: data.Mixture) -> dict[str, float]:
    """How far points x (N, d) are from a Gaussian mixture, component by component.

    Each point goes to its nearest mean; per component, the Fréchet (2-Wasserstein²) distance between
    the fitted Gaussian and the true one. Returns the mean of those, the largest weight error, and the
    largest mean / covariance errors.
    """
    x, means, covs = x.double().cpu(), mixture.means, mixture.covs
    k = torch.cdist(x, means).argmin(1)
    K = means.shape[0]
    w = torch.bincount(k, minlength=K).double() / len(x)
    fr, mean_err, cov_err = [], [], []
    for i in range(K):
        xi = x[k == i]
        if len(xi) < 3:
            return {
                "frechet": float("inf"),
                "weight_err": float("inf"),
                "mean_err": float("inf"),
                "cov_err": float("inf"),
            }
        m, c = xi.mean(0), torch.cov(xi.T)
        fr.append(frechet_gaussians(m.numpy(), c.numpy(), means[i].numpy(), covs[i].numpy()))
        mean_err.append((m - means[i]).norm().item())
        cov_err.append((c - covs[i]).abs().max().item())
    return {
        "frechet": float(np.mean(fr)),
        "weight_err": (w - mixture.weights).abs().max().item(),
        "mean_err": max(mean_err),
        "cov_err": max(cov_err),
    }


# ---------------------------------------------------------------- restoration and diversity (images in [0, 1])
DISTINCT_TOL = 0.02  # two images count as the same when their mean absolute pixel difference is below this


def restoration_scores(x: torch.Tensor, originals: torch.Tensor) -> dict[str, float]:
    """Mean L1 per pixel and mean PSNR (dB, peak 1) of restorations against the originals."""
    err = (x.float() - originals.float()).flatten(1)
    mse = err.pow(2).mean(1).clamp_min(1e-10)
    return {"l1": err.abs().mean().item(), "psnr": (10 * torch.log10(1 / mse)).mean().item()}


def diversity(x: torch.Tensor, tol: float = DISTINCT_TOL) -> dict[str, float]:
    """Mean pairwise L1 distance per pixel, and the number of distinct images (greedy: an image is new
    when it differs from every image already counted by ≥ `tol` mean absolute difference)."""
    flat = x.float().flatten(1)
    n = flat.shape[0]
    d = torch.cdist(flat, flat, p=1) / flat.shape[1]  # (n, n)
    pairwise = d.sum().item() / (n * (n - 1)) if n > 1 else 0.0
    kept: list[int] = []
    for i in range(n):
        if not kept or bool((d[i, kept] >= tol).all()):
            kept.append(i)
    return {"pairwise": pairwise, "distinct": float(len(kept))}


# ---------------------------------------------------------------- words, and one entry point for any samples
def word_scores(name: str, samples: list[str]) -> dict[str, float]:
    """valid: in the full list; novel-valid: in the held-out split (never trained on); distinct: unique share."""
    from . import text

    full, held = text.word_set(name), text.word_set(name, "test")
    n = max(1, len(samples))
    return {
        "valid": sum(s in full for s in samples) / n,
        "novel_valid": sum(s in held for s in samples) / n,
        "distinct": len(set(samples)) / n,
    }


REFERENCE_SEED = 12_345  # fresh 2-D data for the distance, never the training draw (seed 0)


def evaluate(name: str, samples) -> dict[str, float]:
    """The judge's figures for samples of dataset `name`, in data space: words (list of str), images
    (N, 1, H, W) in [0, 1] or points (N, 2).

    - words: valid / novel-valid / distinct shares;
    - mnist28: confident share and Fréchet distance (the digit classifier) plus distinct images;
    - digits8: sliced Wasserstein distance of the flattened images to the held-out digits, distinct images;
    - 2-D sets: sliced Wasserstein distance to fresh data (and, for gaussians8, the mixture's Fréchet).
    """
    from . import text

    if name in text.TEXTS:
        if not all(isinstance(s, str) for s in samples):
            raise ValueError(f"{name} samples must be strings")
        return word_scores(name, list(samples))
    data.check_name(name)
    x = torch.as_tensor(samples, dtype=torch.float32)
    if not torch.isfinite(x).all():
        raise ValueError("samples contain NaN or infinite values")
    want = data.shape(name)
    if x.dim() != len(want) + 1 or tuple(x.shape[1:]) != want or len(x) < 2:
        raise ValueError(f"{name} samples must be (N ≥ 2, {', '.join(map(str, want))}), got {tuple(x.shape)}")
    if data.is_image(name):
        test = data.images(name, "test")[0]
        out = {"distinct": diversity(x)["distinct"] / len(x)}
        if name == "mnist28":
            out.update(digit_scores(load_classifier(), x.clamp(0, 1), test))
        else:
            out["sliced_wasserstein"] = sliced_wasserstein(x.flatten(1), test.flatten(1))
        return out
    ref = data.points(name, max(len(x), 2000), seed=REFERENCE_SEED)
    out = {"sliced_wasserstein": sliced_wasserstein(x, ref)}
    if name == "gaussians8":
        out["mixture_frechet"] = mixture_distance(x, data.gaussians8())["frechet"]
    return out
