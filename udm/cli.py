"""Command line: `python -m udm train|sample|judge …`. Bad names exit with status 2 and one line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import checkpoint, data


def _train(args: argparse.Namespace) -> int:
    from .train import default_config, train

    overrides = {
        k: v
        for k, v in dict(
            steps=args.steps, batch_size=args.batch_size, lr=args.lr, schedule=args.schedule, seed=args.seed
        ).items()
        if v is not None
    }
    cfg = default_config(args.data, small=args.small, **overrides)
    out = Path(args.out) if args.out else checkpoint.path(f"hot-{args.data}")
    summary = train(cfg, out, progress=not args.quiet)
    print(f"saved {out} ({summary})")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from .train import write_stats

    folder = Path(args.checkpoint) if args.checkpoint else checkpoint.path(f"hot-{data.check_name(args.data)}")
    stats = write_stats(folder, grid=args.grid, per_t=args.per_t)
    print(
        f"wrote {folder / 'stats.safetensors'}: E‖ε‖²/d from {stats['eps_sq'][1]:.4f} (t=1) "
        f"to {stats['eps_sq'][-1]:.6f} (t=T)"
    )
    return 0


def _judge(args: argparse.Namespace) -> int:
    from .judge import train_classifier

    out = Path(args.out) if args.out else checkpoint.path("judge-mnist28")
    print(train_classifier(out, epochs=args.epochs))
    return 0


PROCESSES = ("hot",)


def _sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from . import pipeline, viz

    if args.process not in PROCESSES:
        raise ValueError(f"unknown process {args.process!r}; valid: {', '.join(PROCESSES)}")
    if not 1 <= args.scale <= 16:
        raise ValueError(f"--scale must be between 1 and 16, got {args.scale}")
    req = pipeline.HotRequest(
        data=args.data, sampler=args.sampler, steps=args.steps, n=args.n, seed=args.seed, eta=args.eta, model=args.model
    )
    ts, x_t, x0_hat, final = [], [], [], None
    for step in pipeline.hot_steps(req):
        ts.append(step.t)
        x_t.append(pipeline.to_data(req.data, step.x_t))
        x0_hat.append(pipeline.to_data(req.data, step.x0_hat))
        final = pipeline.to_data(req.data, step.x_s)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        samples=final.numpy(),
        x0_hat=torch.stack(x0_hat).numpy(),
        x_t=torch.stack(x_t).numpy(),
        timesteps=np.array(ts),
    )
    print(f"wrote {out}: samples {tuple(final.shape)}, x0_hat {(len(ts), *final.shape)}")
    if args.png:
        viz.picture(final, scale=args.scale).save(args.png)
        print(f"wrote {args.png}")
    if args.gif:
        frames = [
            viz.side_by_side(viz.picture(a, scale=args.scale), viz.picture(b, scale=args.scale))
            for a, b in zip(x_t, x0_hat)
        ]
        Path(args.gif).write_bytes(viz.gif_bytes(frames))
        print(f"wrote {args.gif} (x_t left, x̂_0 right)")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m udm", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a hot-diffusion ε-model and save a checkpoint")
    t.add_argument("--data", required=True, help=", ".join(data.DATASETS))
    t.add_argument("--out", help="checkpoint folder (default checkpoints/hot-DATA)")
    t.add_argument("--steps", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--schedule", help="linear (default) or cosine")
    t.add_argument("--seed", type=int)
    t.add_argument("--small", action="store_true", help="tiny network (tests)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_train)

    s = sub.add_parser("sample", help="sample with a shipped model; write samples and the x̂_0 trajectory")
    s.add_argument("--process", default="hot", help=", ".join(PROCESSES))
    s.add_argument("--data", default="mnist28", help=", ".join(data.DATASETS))
    s.add_argument("--sampler", default="ddim", help="ddpm, ddim, analytic-ddpm, analytic-ddim")
    s.add_argument("--steps", type=int, default=50)
    s.add_argument("--eta", type=float, help="DDIM's η in [0, 1] (ddim, analytic-ddim)")
    s.add_argument("--model", default="trained", help="trained, or exact (gaussians8's closed-form ε*)")
    s.add_argument("-n", type=int, default=64, help="number of samples")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help=".npz: samples (N, …) in data space, x0_hat and x_t (steps, N, …)")
    s.add_argument("--png", help="also write a grid / scatter of the samples")
    s.add_argument("--gif", help="also write an animation of x_t and x̂_0")
    s.add_argument("--scale", type=int, default=4, help="pixels per image pixel in --png / --gif")
    s.set_defaults(func=_sample)

    st = sub.add_parser("stats", help="recompute a checkpoint's Analytic-DPM statistics")
    st.add_argument("--data", default="mnist28", help=", ".join(data.DATASETS))
    st.add_argument("--checkpoint", help="checkpoint folder (default checkpoints/hot-DATA)")
    st.add_argument("--grid", type=int, help="number of timesteps to estimate at (default: the config's)")
    st.add_argument("--per-t", type=int, help="draws per timestep (default: the config's)")
    st.set_defaults(func=_stats)

    j = sub.add_parser("judge", help="train the MNIST classifier used as the quality judge")
    j.add_argument("--out", help="folder (default checkpoints/judge-mnist28)")
    j.add_argument("--epochs", type=int, default=8)
    j.set_defaults(func=_judge)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
