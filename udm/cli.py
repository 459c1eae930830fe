"""Command line: `python -m udm train|sample|evaluate|stats|judge …`. Bad names exit with status 2 and one line."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import fields
from pathlib import Path

from . import checkpoint, data, process


def _overrides(args: argparse.Namespace, *names: str) -> dict:
    """The options given on the command line (the rest keep their defaults)."""
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


TRAIN_OPTIONS = (
    "steps",
    "batch_size",
    "lr",
    "warmup",
    "init",
    "seed",
    "schedule",
    "width",
    "layers",
    "soft",
    "dropout",
    "eval_every",
    "calibrate",
)


def _train(args: argparse.Namespace) -> int:
    p = process.get(args.process)
    name = args.data or p.default_data
    if name is None:
        raise ValueError(f"--data is required for {p.name}: one of {', '.join(p.datasets())}")
    cfg = p.train_config(name, small=args.small, **_overrides(args, *TRAIN_OPTIONS))
    out = Path(args.out) if args.out else checkpoint.path(p.checkpoint(name))
    summary = p.train(cfg, out, progress=not args.quiet)
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


def _calibrate(args: argparse.Namespace) -> int:
    from . import text, textmodel
    from .pipeline import checkpoint_root

    name = f"{args.process}-{text.check_name(args.data)}"
    folder = Path(args.checkpoint) if args.checkpoint else checkpoint_root() / name
    if not 100 <= args.samples <= 100_000:
        raise ValueError(f"--samples must be in [100, 100000], got {args.samples}")
    c = textmodel.recalibrate(folder, args.samples)
    print(f"calibrated {folder}: temperature {c['temperature']} ({c['method']}, {c['seconds']:.0f} s)")
    if c["method"] == "entropy":
        print(
            "its likelihood.json and quality.json are of the old temperature: run bench.text_likelihood and "
            "bench.text_quality with --write-card, and calibrate the edit model of these words again"
        )
    return 0


def _distill(args: argparse.Namespace) -> int:
    from .distill import DistillConfig, distill

    cfg = DistillConfig(
        **_overrides(
            args, "seconds", "paths", "batch_size", "lr", "teacher_steps", "eval_every", "eval_samples", "rule", "seed"
        )
    )
    out = Path(args.out) if args.out else checkpoint.path(f"hot-{cfg.teacher}-distilled")
    summary = distill(cfg, out, progress=(lambda m: None) if args.quiet else (lambda m: print(m, flush=True)))
    print(f"saved {out}: {summary}")
    return 0


def _judge(args: argparse.Namespace) -> int:
    from .judge import train_classifier

    out = Path(args.out) if args.out else checkpoint.path("judge-mnist28")
    print(train_classifier(out, epochs=args.epochs))
    return 0


# `sample` options that are request fields (each process takes those its request has)
REQUEST_OPTIONS = (
    "data", "sampler", "steps", "eta", "model", "degradation", "sigma", "start_noise", "fresh", "restore_from",
    "k", "pattern", "temperature", "n", "seed", "spacing",
)  # fmt: skip


def _request(p: process.Process, args: argparse.Namespace):
    """The validated request the options describe; an option the process does not take is an error."""
    have = {f.name for f in fields(p.Request)} - {"process"}
    given = _overrides(args, *REQUEST_OPTIONS)
    extra = [k for k in given if k not in have]
    if extra:
        flag = lambda k: "-n" if k == "n" else "--" + k.replace("_", "-")  # noqa: E731
        raise ValueError(
            f"{', '.join(map(flag, extra))} {'does' if len(extra) == 1 else 'do'} not apply to {p.name} "
            f"(its options: {', '.join(flag(k) for k in REQUEST_OPTIONS if k in have)})"
        )
    return p.request(**given)


def _lab(args: argparse.Namespace) -> int:
    import time

    from . import lab, lab_pipeline

    spec = _lab_spec(args)
    run = lab_pipeline.Training(spec, seconds=args.seconds, seed=args.seed, small=args.small)
    print(f"training {spec.name}: {', '.join(lab.rules(spec))} apply; budget {args.seconds:g} s", flush=True)
    shown = time.perf_counter()
    for report in run.steps():
        if not args.quiet and (report.done or time.perf_counter() - shown >= 5):
            shown = time.perf_counter()
            print(f"  step {report.step} · {report.seconds:.1f} s · loss {report.loss:.4f}", flush=True)
    trained = run.trained()
    figures = lab_pipeline.default_figures(trained, args.seed)
    out = Path(args.out)
    trained.save(out, figures)
    for rule, f in figures.items():
        print(f"  {rule}: " + ", ".join(f"{k} {v:.3f}" for k, v in f.items()))
    print(f"saved {out} (sample it: python -m udm sample --checkpoint {out} --out samples.npz)")
    return 0


MAX_SPEC_BYTES = 1_000_000  # a spec or a word list file


def _read(path: str, what: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no such {what}: {file}")
    if file.stat().st_size > MAX_SPEC_BYTES:
        raise ValueError(f"{file} is larger than {MAX_SPEC_BYTES:,} bytes; a {what} is far smaller")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{file} is not UTF-8 text") from None


def _lab_spec(args: argparse.Namespace):
    """The spec the options describe: --spec FILE.json, or --data and --forward (and -T, --schedule,
    --sigma, --words FILE); options given beside --spec override its fields."""
    from . import lab

    d = lab.Spec.from_json(_read(args.spec, "spec file")).to_dict() if args.spec else {}
    for key, value in (("data", args.data), ("forward", args.forward), ("T", args.T)):
        if value is not None:
            d[key] = value
    if args.schedule is not None:
        d["schedule"] = args.schedule
    if args.sigma is not None:
        d["sigma"] = args.sigma
    if args.words:
        d.setdefault("data", "words")
        d["words"] = list(lab.parse_words(_read(args.words, "word list")))
    if "data" not in d or "forward" not in d:
        raise ValueError("say what to train: --data and --forward (e.g. --data gaussians8 --forward noise), or --spec")
    return lab.Spec.from_dict(d)


@contextlib.contextmanager
def _checkpoint_process(folder: Path, args: argparse.Namespace):
    """The process a checkpoint folder holds (and its data into args.data): a Lab checkpoint as it is; a
    shipped one (hot-mnist28, mask-en5, …) through its process, reading that folder for as long as the
    block runs."""
    import json
    import tempfile

    from . import lab_pipeline

    meta = next((folder / f for f in ("udm.json", "config.json") if (folder / f).is_file()), None)
    if meta is None:
        raise FileNotFoundError(f"no checkpoint at {folder} (no config.json or udm.json)")
    cfg = json.loads(meta.read_text())
    if cfg.get("process") == "lab":
        p = lab_pipeline.LabProcess(lab_pipeline.Trained.load(folder))
        name = p.spec.data
    else:
        p, name = process.get(cfg.get("process", "hot")), cfg.get("data")
    if args.data is not None and args.data != name:
        raise ValueError(f"{folder} holds a {p.name} model of {name}, not {args.data}")
    args.data = name
    if cfg.get("process") == "lab":
        yield p
        return
    link = p.checkpoint(name)
    if cfg.get("prediction") == "v":  # a distilled student (python -m udm distill)
        if getattr(args, "model", None) not in (None, "distilled"):
            raise ValueError(f"{folder} holds a distilled model; --model {args.model} does not apply to it")
        args.model, link = "distilled", f"hot-{name}-distilled"
    old = os.environ.get("UDM_CHECKPOINTS")
    with tempfile.TemporaryDirectory(prefix="udm-checkpoint-") as root:
        # the folder, under the name its process reads it by
        (Path(root) / link).symlink_to(folder.resolve(), target_is_directory=True)
        os.environ["UDM_CHECKPOINTS"] = root
        process.forget_models()
        try:
            yield p
        finally:
            if old is None:
                os.environ.pop("UDM_CHECKPOINTS", None)
            else:
                os.environ["UDM_CHECKPOINTS"] = old
            process.forget_models()


def _sample(args: argparse.Namespace) -> int:
    if args.checkpoint:
        with _checkpoint_process(Path(args.checkpoint), args) as p:
            return _sample_with(p, args)
    return _sample_with(process.get(args.process), args)


def _records(p: process.Process, args: argparse.Namespace):
    """(request, its step records): one of the process's own rules, or a reference scheduler that Compare
    offers (e.g. diffusers-dpm-solver++), run from the same x_T on the same network."""
    name = args.data or p.default_data or next(f.default for f in fields(p.Request) if f.name == "data")
    ref = next((c for c in p.choices(name) if c.reference and c.sampler == args.sampler), None)
    if ref is None:
        req = _request(p, args)
        return req, p.steps(req)
    from .pipeline import device_name

    steps = 50 if args.steps is None else args.steps
    if ref.max_steps is not None:
        process.check_range(steps, f"{ref.label}: steps", 1, ref.max_steps)
    req = p.request(data=name, n=args.n, seed=args.seed)  # checks n, seed and the data
    eta = args.eta if ref.eta else None
    if args.eta is not None and not ref.eta:
        raise ValueError(f"--eta does not apply to {ref.label}")
    if args.spacing is not None:
        raise ValueError(f"--spacing does not apply to {ref.label}: diffusers' schedulers place their own steps")
    return req, p.reference_steps(ref, name, req.n, req.seed, steps, eta, device_name(None))


def _sample_with(p: process.Process, args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from . import viz

    if not 1 <= args.scale <= 16:
        raise ValueError(f"--scale must be between 1 and 16, got {args.scale}")
    req, records = _records(p, args)
    ts, x_t, x0_hat, step = [], [], [], None
    for step in records:
        ts.append(step.t)
        x_t.append(p.state(req.data, step.x_t))
        x0_hat.append(p.decode(req.data, step.x0_hat))
    final = p.decode(req.data, step.x_s)  # the last state is data for every process
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(final, list):  # words
        states = np.array(x_t) if isinstance(x_t[0], list) else torch.stack(x_t).numpy()
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
        frames = [
            viz.side_by_side(viz.picture(viz.viewable(a), scale=args.scale), viz.picture(b, scale=args.scale))
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


def _own_samplers(p: process.Process) -> list[str]:
    """A process's own reverse rules (the request's `sampler` values), its default first."""
    default = next(f.default for f in fields(p.Request) if f.name == "sampler")
    choices = p.choices(p.datasets()[0])
    names = dict.fromkeys(c.sampler for c in choices if not c.reference)
    refs = dict.fromkeys(c.sampler for c in choices if c.reference)
    return [f"{n} (default)" if n == default else n for n in names] + list(refs)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m udm", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    every = process.every()
    processes = "; ".join(f"{p.name}: {p.title}" for p in every)

    t = sub.add_parser("train", help="train a model and save a checkpoint")
    t.add_argument("--process", default="hot", help=processes)
    t.add_argument("--data", help="; ".join(f"{p.name}: {', '.join(p.datasets())}" for p in every))
    t.add_argument("--out", help="checkpoint folder (default checkpoints/PROCESS-DATA)")
    t.add_argument("--steps", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--warmup", type=int, help="steps of linear warm-up before the cosine decay")
    t.add_argument("--init", help="hot: a checkpoint folder whose weights training continues from (same network)")
    t.add_argument("--schedule", help="hot, encoding: linear or cosine")
    t.add_argument("--seed", type=int)
    t.add_argument("--width", type=int, help="mask, edit: the BERT's hidden size (default 128)")
    t.add_argument("--layers", type=int, help="mask, edit: the BERT's layers (default 4)")
    t.add_argument("--soft", type=float, help="mask, edit: weight in [0, 1] of the exact posterior as a target")
    t.add_argument("--dropout", type=float, help="mask, edit: the BERT's dropout while it trains (default 0)")
    t.add_argument(
        "--eval-every", type=int, help="mask, edit: steps between points of the valid-rate curve (default 0: none)"
    )
    t.add_argument(
        "--calibrate",
        type=int,
        help="mask, edit: words sampled to calibrate the temperature after training (default 2000; 0: none)",
    )
    t.add_argument("--small", action="store_true", help="tiny network (tests)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_train)

    s = sub.add_parser("sample", help="sample with a shipped model; write samples and the x̂_0 trajectory")
    s.add_argument("--process", default="hot", help=", ".join(p.name for p in every))
    s.add_argument("--checkpoint", help="a checkpoint folder (a Lab one, or a shipped one): its process and data")
    s.add_argument("--data", help="; ".join(f"{p.name}: {', '.join(p.datasets())}" for p in every))
    s.add_argument("--sampler", help="; ".join(f"{p.name}: {', '.join(_own_samplers(p))}" for p in every))
    s.add_argument("--steps", type=int, help="hot, encoding: number of steps K ≤ T (default 50)")
    s.add_argument("--eta", type=float, help="hot, encoding: DDIM's η in [0, 1]")
    s.add_argument("--spacing", help="hot: where the K steps lie: even (default), quadratic or log-snr")
    s.add_argument(
        "--model",
        help="trained (default), exact (gaussians8's ε*; the training list's q(x_0|x_t)), distilled "
        "(hot mnist28: the few-step student, 1-20 steps), or bert-only (edit: the edit BERT at every step; "
        "trained takes its last step with the mask BERT)",
    )
    s.add_argument("--degradation", help="cold: blur (default), mask, pixelate, fade")
    s.add_argument("--sigma", type=float, help="cold: forward noise σ (one the restorer was trained at; default 0)")
    s.add_argument("--start-noise", type=float, help="cold: extra noise added to x_T, in [0, 1]")
    s.add_argument("--fresh", type=float, help="cold, improved: share of fresh noise per step in [0, 1] (default 0)")
    s.add_argument("--restore-from", type=int, help="cold: restore held-out digits degraded to this t")
    s.add_argument("--k", type=int, help="mask: positions revealed per step (default 1)")
    s.add_argument("--pattern", help="mask: fill the blanks of a pattern, e.g. 'c?a?e' or '一?二?'")
    s.add_argument(
        "--temperature",
        type=float,
        help="mask, edit: sampling temperature (default 1: a trained BERT as its card calibrates it); "
        "encoding words: 0 (argmax)",
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

    lb = sub.add_parser("lab", help="compose a forward process from blocks, train it against a time budget")
    lb.add_argument("--data", help="gaussians8, moons, swissroll, checkerboard, digits8, mnist14, mnist28, en5, words")
    lb.add_argument("--forward", help="blocks joined by '+': noise, blur, pixelate, fade, mask, edit (e.g. blur+noise)")
    lb.add_argument("--seconds", type=float, default=60.0, help="the training budget (default 60, at most 600)")
    lb.add_argument("--seed", type=int, default=0)
    lb.add_argument("--out", required=True, help="the checkpoint folder to write")
    lb.add_argument("-T", type=int, dest="T", help="number of steps T (default 1000 with noise, 50 without)")
    lb.add_argument("--schedule", help="the noise block's ᾱ_t: linear (default) or cosine")
    lb.add_argument("--sigma", type=float, help="Gaussian noise σ on top of deterministic blocks (default 0)")
    lb.add_argument("--spec", help='a JSON spec: {"data": …, "forward": […], "T": …}')
    lb.add_argument("--words", help="a word list file (one word per line, equal lengths): data 'words'")
    lb.add_argument("--small", action="store_true", help="tiny network (tests)")
    lb.add_argument("--quiet", action="store_true", help="no progress lines")
    lb.set_defaults(func=_lab)

    st = sub.add_parser("stats", help="recompute a checkpoint's Analytic-DPM statistics")
    st.add_argument("--data", default="mnist28", help=", ".join(data.DATASETS))
    st.add_argument("--checkpoint", help="checkpoint folder (default checkpoints/hot-DATA)")
    st.add_argument("--grid", type=int, help="number of timesteps to estimate at (default: the config's)")
    st.add_argument("--per-t", type=int, help="draws per timestep (default: the config's)")
    st.set_defaults(func=_stats)

    cb = sub.add_parser(
        "calibrate",
        help="set a text checkpoint's temperature again (mask: by entropy; edit: to its mask model's collisions)",
    )
    cb.add_argument("--process", choices=("mask", "edit"), default="mask")
    cb.add_argument("--data", default="en5", help="en5 or zh4")
    cb.add_argument("--checkpoint", help="checkpoint folder (default checkpoints/PROCESS-DATA)")
    cb.add_argument("--samples", type=int, default=2000, help="words sampled per measurement (default 2000)")
    cb.set_defaults(func=_calibrate)

    e = sub.add_parser("evaluate", help="the quality judge's figures for a samples file (.npz)")
    e.add_argument("file", help=".npz with `samples` (images in [0, 1] or points) or `texts`")
    e.add_argument("--data", required=True, help=", ".join(data.DATASETS) + ", en5, zh4")
    e.add_argument("--json", action="store_true", help="one JSON line instead of name: value lines")
    e.set_defaults(func=_evaluate)

    d = sub.add_parser("distill", help="distil the MNIST model into a few-step student (--model distilled)")
    d.add_argument("--out", help="folder (default checkpoints/hot-mnist28-distilled)")
    d.add_argument("--seconds", type=float, help="training budget in seconds (default 3600)")
    d.add_argument("--paths", type=int, help="teacher runs x_T → x_0* (default 6144)")
    d.add_argument("--teacher-steps", type=int, help="steps of the teacher's path (default 20)")
    d.add_argument("--batch-size", type=int)
    d.add_argument("--lr", type=float)
    d.add_argument("--eval-every", type=float, help="seconds of training between quality figures (default 600)")
    d.add_argument("--eval-samples", type=int, help="samples per quality figure (default 500)")
    d.add_argument("--rule", help="the student's default reverse rule: ddim (default) or ddpm")
    d.add_argument("--seed", type=int)
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=_distill)

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
