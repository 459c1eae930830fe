"""The encoding models: how much of a held-out x_0 survives encode → noise to t → decode, and the quality
of generated samples, set beside hot diffusion (digits) and the mask model (words) as their own cards
measured them.

    python -m bench.encoding_quality [--n 1000] [--n-words 2000] [--write-card]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from udm import data, encoding, judge, process, text, viz
from udm import encoding_pipeline as ep
from udm.checkpoint import write_card
from udm.judge import word_scores
from udm.pipeline import checkpoint_root


def reconstruction(name: str) -> dict:
    m = ep.encoding_model(name, "cpu")
    T = m.T
    ts = [1, T // 4, T // 2, 3 * T // 4]
    x0 = ep.encoding_data(name, "test")
    d = encoding.diagnostics(m.model, m.forward, x0, ts)
    if ep.is_words(name):
        columns = ["t", "character accuracy", "word accuracy"]
        rows = [[t, f"{r['char_accuracy']:.4f}", f"{r['word_accuracy']:.4f}"] for t, r in d["per_t"].items()]
    else:
        columns = ["t", "mean absolute pixel error (0..1)", "PSNR (dB)"]
        rows = [[t, f"{r['pixel_l1']:.4f}", f"{r['psnr']:.2f}"] for t, r in d["per_t"].items()]
    note = (
        f"All {len(x0)} held-out examples: encode, x_t = ᾱ_t F(x_0) + β̄_t ε (seed 0), decode "
        f"({'argmax' if ep.is_words(name) else 'the mean'} of q(x_0 | x_t)). Latent RMS {d['latent_rms']}."
    )
    return {"title": "Reconstruction from x_t", "columns": columns, "rows": rows, "note": note}


def _other_rows(folder: str, pick) -> list[list]:
    """Rows measured by another model's bench (its quality.json), for comparison."""
    file = checkpoint_root() / folder / "quality.json"
    if not file.is_file():
        return []
    q = json.loads(file.read_text())
    return [r for t in q.get("tables", [q]) for r in t["rows"] if pick(r)]


def digits(n: int) -> tuple[dict, torch.Tensor]:
    judge_model = judge.load_classifier()
    test, _ = data.images("mnist28", "test")
    rows, grid = [], None
    for sampler, steps in (("ddim", 50), ("ddpm", 50), ("ddpm", 200)):
        start = time.perf_counter()
        x = process.many(process.get("encoding"), ep.EncodingRequest(data="mnist28", sampler=sampler, steps=steps), n)
        seconds = time.perf_counter() - start
        s = judge.digit_scores(judge_model, x, test)
        rows.append(
            ["encoding", sampler, steps, n, f"{s['confident']:.3f}", f"{s['frechet']:.2f}", f"{seconds / n * 1000:.0f}"]
        )
        print(rows[-1], flush=True)
        if grid is None:
            grid = x[:64]
    for r in _other_rows("hot-mnist28", lambda r: r[0] in ("ddim", "ddpm") and r[1] in (50, 1000)):
        rows.append(["hot (its card)", *r, "—"])
    columns = [
        "model",
        "sampler",
        "steps",
        "samples",
        f"confident share (p ≥ {judge.CONFIDENT})",
        "Fréchet",
        "ms / sample",
    ]
    note = "Judged by `checkpoints/judge-mnist28` against the 500 held-out digits; hot rows from `hot-mnist28`'s card."
    return {"title": "Generation", "columns": columns, "rows": rows, "note": note}, grid


def words(n: int) -> tuple[dict, list[str]]:
    rows, first = [], None
    for sampler, steps, temperature in (("ddim", 50, 0.0), ("ddpm", 50, 0.0), ("ddpm", 50, 1.0), ("ddim", 200, 0.0)):
        start = time.perf_counter()
        ws = process.many(
            process.get("encoding"),
            ep.EncodingRequest(data="en5", sampler=sampler, steps=steps, temperature=temperature),
            n,
        )
        seconds = time.perf_counter() - start
        s = word_scores("en5", ws)
        rows.append(
            [
                "encoding",
                f"{sampler}, x̂_0 temperature {temperature:g}",
                steps,
                f"{s['valid']:.3f}",
                f"{s['novel_valid']:.3f}",
                f"{s['distinct']:.3f}",
                f"{1000 * seconds / n:.2f}",
            ]
        )
        print(rows[-1], " ".join(ws[:8]), flush=True)
        first = first or ws
    for r in _other_rows("mask-en5", lambda r: r[2] == "trained" and r[3] in ("naive", "improved")):
        rows.append(["mask (its card)", r[3], 5, r[4], r[5], r[6], r[7]])
    columns = ["model", "sampler", "steps", "valid", "novel-valid", "distinct", "s / 1000 words"]
    note = (
        f"{n} samples per row (seed 0). valid: in the full `en5` list; novel-valid: in the held-out 10 %; "
        "distinct: unique share. Mask rows from `mask-en5`'s card."
    )
    return {"title": "Generation", "columns": columns, "rows": rows, "note": note}, first


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000, help="digits per sampler")
    p.add_argument("--n-words", type=int, default=2000, help="words per sampler")
    p.add_argument("--data", nargs="+", default=["mnist28", "en5"], help="which models (default both)")
    p.add_argument("--write-card", action="store_true", help="write quality.json (+ samples.png) into each checkpoint")
    args = p.parse_args()
    torch.manual_seed(0)
    command = f"python -m bench.encoding_quality --n {args.n} --n-words {args.n_words} --write-card"
    for name in args.data:
        rec = reconstruction(name)
        gen, shown = digits(args.n) if name == "mnist28" else words(args.n_words)
        for table in (rec, gen):
            print(f"\n{name}: {table['title']}\n" + "| " + " | ".join(table["columns"]) + " |")
            for r in table["rows"]:
                print("| " + " | ".join(map(str, r)) + " |")
        if args.write_card:
            folder = checkpoint_root() / f"encoding-{name}"
            q = {"tables": [rec, gen], "command": command}
            (folder / "quality.json").write_text(json.dumps(q, indent=2, ensure_ascii=False) + "\n")
            if name == "mnist28":
                viz.grid(shown, ncol=8, scale=3).save(folder / "samples.png")
            else:
                v = text.word_set("en5")
                viz.words_picture(
                    shown[:48], valid=v - text.word_set("en5", "test"), novel=text.word_set("en5", "test"), ncol=8
                ).save(folder / "samples.png")
            write_card(folder)


if __name__ == "__main__":
    main()
