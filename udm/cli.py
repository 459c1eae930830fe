"""Command line: `python -m udm train|sample|evaluate|stats|judge …`. Bad names exit with status 2 and one line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import checkpoint, data


def _overrides(args: argparse.Namespace, *names: str) -> dict:
    """The training options given on the command line (the rest keep their defaults)."""
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}


def _train(args: argparse.Namespace) -> int:
    from .train import ColdTrainConfig, default_config, encoding_config, train, train_cold, train_encoding

    common = ("steps", "batch_size", "lr", "seed")
    if args.process == "cold":
        cfg = ColdTrainConfig(data=args.data or "mnist28", small=args.small, **_overrides(args, *common))
        out, run = checkpoint.path(f"cold-{cfg.data}"), train_cold
    elif args.process in ("mask", "edit"):
        from . import textmodel

        cfg = textmodel.default_config(args.process, args.data or "en5", small=args.small, **_overrides(args, *common))
        out, run = checkpoint.path(f"{cfg.process}-{cfg.data}"), textmodel.train
    elif args.process == "encoding":
        cfg = encoding_config(args.data or "mnist28", small=args.small, **_overrides(args, *common))
        out, run = checkpoint.path(f"encoding-{cfg.data}"), train_encoding
    elif args.process == "hot":
        if args.data is None:
            raise ValueError("--data is required for hot diffusion")
        cfg = default_config(args.data, small=args.small, **_overrides(args, *common, "schedule"))
        out, run = checkpoint.path(f"hot-{args.data}"), train
    else:
        raise ValueError(f"unknown process {args.process!r}; valid: hot, cold, mask, edit, encoding")
    out = Path(args.out) if args.out else out
    summary = run(cfg, out, progress=not args.quiet)
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


PROCESSES = ("hot", "cold", "mask", "edit", "encoding")


def _records(args: argparse.Namespace):
    """(decode, step records) of the run the arguments describe; decode maps model space to what the
    .npz stores (images / points in data space, or strings)."""
    from functools import partial

    from . import pipeline

    if args.process in ("mask", "edit"):
        return _text_records(args)
    if args.process == "encoding":
        return _encoding_records(args)
    if args.k != 1 or args.pattern is not None or args.temperature is not None:
        raise ValueError("--k, --pattern and --temperature are options of the mask, edit and encoding models")
    if args.process != "hot" and args.model != "trained" and args.process not in ("mask", "edit"):
        raise ValueError("--model exact exists for hot (gaussians8) and the text processes only")
    if args.process == "cold":
        from .cold_pipeline import ColdRequest, cold_steps

        if args.steps is not None or args.eta is not None or args.model != "trained":
            raise ValueError("--steps, --eta and --model are hot-diffusion options; cold runs t, t−1, …, 1")
        req = ColdRequest(
            degradation=args.degradation,
            sampler=args.sampler or "improved",
            sigma=args.sigma,
            n=args.n,
            seed=args.seed,
            start_noise=args.start_noise,
            fresh=args.fresh,
            restore_from=args.restore_from,
            data=args.data or "mnist28",
        )
        return partial(pipeline.to_data, req.data), cold_steps(req)
    if args.restore_from is not None or args.fresh is not None or args.sigma or args.start_noise:
        raise ValueError("--restore-from, --fresh, --sigma and --start-noise are cold-diffusion options")
    req = pipeline.HotRequest(
        data=args.data or "mnist28",
        sampler=args.sampler or "ddim",
        steps=50 if args.steps is None else args.steps,
        n=args.n,
        seed=args.seed,
        eta=args.eta,
        model=args.model,
    )
    return partial(pipeline.to_data, req.data), pipeline.hot_steps(req)


def _text_records(args: argparse.Namespace):
    from . import text
    from .text_pipeline import TextRequest, text_steps

    if args.steps is not None or args.eta is not None or args.restore_from is not None or args.sigma:
        raise ValueError("--steps, --eta, --sigma and --restore-from do not apply to the mask and edit models")
    req = TextRequest(
        process=args.process,
        data=args.data or "en5",
        sampler=args.sampler or "improved",
        model=args.model,
        n=args.n,
        seed=args.seed,
        k=args.k,
        temperature=1.0 if args.temperature is None else args.temperature,
        pattern=args.pattern,
    )
    vocab = text.vocab(req.data)
    return (lambda x: vocab.decode(x.cpu())), text_steps(req)


def _encoding_records(args: argparse.Namespace):
    from functools import partial

    from .encoding_pipeline import EncodingRequest, decode, encoding_steps

    if args.model != "trained" or args.k != 1 or args.pattern is not None or args.restore_from is not None:
        raise ValueError("--model, --k, --pattern and --restore-from do not apply to the encoding model")
    if args.sigma or args.start_noise or args.fresh is not None:
        raise ValueError("--sigma, --start-noise and --fresh are cold-diffusion options")
    name = args.data or "mnist28"
    req = EncodingRequest(
        data=name,
        sampler=args.sampler or "ddim",
        steps=50 if args.steps is None else args.steps,
        n=args.n,
        seed=args.seed,
        eta=args.eta,
        temperature=0.0 if args.temperature is None else args.temperature,
    )
    return partial(decode, name), encoding_steps(req)


def _sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from . import viz

    if args.process not in PROCESSES:
        raise ValueError(f"unknown process {args.process!r}; valid: {', '.join(PROCESSES)}")
    if not 1 <= args.scale <= 16:
        raise ValueError(f"--scale must be between 1 and 16, got {args.scale}")
    decode, records = _records(args)
    state = (lambda z: z.float().cpu()) if args.process == "encoding" else decode  # x_t: a latent there
    ts, x_t, x0_hat, step = [], [], [], None
    for step in records:
        ts.append(step.t)
        x_t.append(state(step.x_t))
        x0_hat.append(decode(step.x0_hat))
    final = decode(step.x_s)  # the last state is data for every process
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(final, list):  # words
        states = torch.stack(x_t).numpy() if args.process == "encoding" else np.array(x_t)
        np.savez_compressed(out, texts=np.array(final), x0_hat=np.array(x0_hat), x_t=states, timesteps=np.array(ts))
        print(f"wrote {out}: texts ({len(final)},), x0_hat ({len(ts)}, {len(final)}); first: {' '.join(final[:8])}")
        return 0
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
        show = viz.latent_images if args.process == "encoding" else (lambda a: a)
        frames = [
            viz.side_by_side(viz.picture(show(a), scale=args.scale), viz.picture(b, scale=args.scale))
            for a, b in zip(x_t, x0_hat)
        ]
        Path(args.gif).write_bytes(viz.gif_bytes(frames))
        print(f"wrote {args.gif} (x_t left, x̂_0 right)")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from .judge import evaluate

    file = Path(args.file)
    if not file.is_file():
        raise FileNotFoundError(f"no such file: {file}")
    try:
        z = np.load(file, allow_pickle=False)  # never unpickle a user's file
    except Exception as e:  # not an .npz, or one that holds pickled objects
        raise ValueError(f"{file} is not a readable .npz of arrays ({e.__class__.__name__})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):  # a bare .npy array
        raise ValueError(f"{file} is a single array; expected an .npz with `samples` or `texts`")
    if "texts" in z.files:
        texts = z["texts"]
        if texts.ndim != 1 or texts.dtype.kind not in "US":
            raise ValueError(f"`texts` must be a 1-D array of strings, got {texts.dtype} of shape {texts.shape}")
        samples = [str(w) for w in texts.tolist()]
    elif "samples" in z.files:
        samples = z["samples"]
        if samples.dtype.kind not in "fiub":
            raise ValueError(f"`samples` must be numbers, got an array of {samples.dtype}")
    else:
        raise ValueError(f"{file} has neither `samples` nor `texts` (keys: {', '.join(z.files) or 'none'})")
    figures = evaluate(args.data, samples)
    if args.json:
        print(json.dumps({k: round(v, 6) for k, v in figures.items()}))
    else:
        for k, v in figures.items():
            print(f"{k}: {v:.4f}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m udm", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and save a checkpoint")
    t.add_argument(
        "--process",
        default="hot",
        help="hot (an ε-model), cold (the restorer for all degradations), mask or edit (a BERT), "
        "encoding (encoder + decoder; mnist28 or en5)",
    )
    t.add_argument("--data", help=", ".join(data.DATASETS) + " (cold: mnist28); mask, edit: en5 or zh4")
    t.add_argument("--out", help="checkpoint folder (default checkpoints/PROCESS-DATA)")
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
    s.add_argument("--data", help=", ".join(data.DATASETS) + " (default mnist28); mask, edit: en5 (default), zh4")
    s.add_argument(
        "--sampler",
        help="hot: ddpm, ddim (default), analytic-ddpm, analytic-ddim; encoding: ddpm, ddim (default); "
        "others: naive, improved (default)",
    )
    s.add_argument("--steps", type=int, help="hot, encoding: number of steps K ≤ T (default 50)")
    s.add_argument("--eta", type=float, help="hot: DDIM's η in [0, 1] (ddim, analytic-ddim)")
    s.add_argument(
        "--model", default="trained", help="trained, or exact (gaussians8's ε*; the training list's q(x_0|x_t))"
    )
    s.add_argument("--degradation", default="blur", help="cold: blur, mask, pixelate, fade")
    s.add_argument("--sigma", type=float, default=0.0, help="cold: forward noise σ (one the restorer was trained at)")
    s.add_argument("--start-noise", type=float, default=0.0, help="cold: extra noise added to x_T, in [0, 1]")
    s.add_argument("--fresh", type=float, help="cold, improved: share of fresh noise per step in [0, 1] (default 0)")
    s.add_argument("--restore-from", type=int, help="cold: restore held-out digits degraded to this t")
    s.add_argument("--k", type=int, default=1, help="mask: positions revealed per step")
    s.add_argument("--pattern", help="mask: fill the blanks of a pattern, e.g. 'c?a?e' or '一?二?'")
    s.add_argument(
        "--temperature", type=float, help="mask, edit: sampling temperature (default 1); encoding words: 0 (argmax)"
    )
    s.add_argument("-n", type=int, default=64, help="number of samples")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--out",
        required=True,
        help=".npz: samples (N, …) or texts (N,), with x0_hat and x_t (steps, N, …; encoding: the latents)",
    )
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

    e = sub.add_parser("evaluate", help="the quality judge's figures for a samples file (.npz)")
    e.add_argument("file", help=".npz with `samples` (images in [0, 1] or points) or `texts`")
    e.add_argument("--data", required=True, help=", ".join(data.DATASETS) + ", en5, zh4")
    e.add_argument("--json", action="store_true", help="one JSON line instead of name: value lines")
    e.set_defaults(func=_evaluate)

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
