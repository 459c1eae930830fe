"""MNIST sample quality of the shipped hot-diffusion model, judged by the shipped classifier.

For each sampler: 1,000 samples, the share classified with confidence ≥ 0.9, and the Fréchet distance
of the judge's penultimate features to the 500 held-out digits. Writes the figures and a sample grid
into the checkpoint's model card.

    python -m bench.mnist_quality [--n 1000] [--write-card]
"""

from __future__ import annotations

import argparse
import json

import torch

from udm import data, judge, pipeline, process, viz
from udm.hot_pipeline import HotRequest

SAMPLERS = [("ddpm", 1000), ("ddim", 50), ("analytic-ddim", 50), ("analytic-ddpm", 50), ("ddpm", 50)]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--n-long", type=int, default=1000, help="samples for the 1000-step run (the costly one)")
    p.add_argument("--write-card", action="store_true", help="write quality.json + samples.png into the checkpoint")
    args = p.parse_args()
    torch.manual_seed(0)
    model = judge.load_classifier()
    test, _ = data.images("mnist28", "test")
    train, _ = data.images("mnist28", "train")
    rows = []
    ref = judge.digit_scores(model, train[:1000], test)
    rows.append(["training digits (reference)", "—", 1000, f"{ref['confident']:.3f}", f"{ref['frechet']:.2f}"])
    grid = None
    for sampler, steps in SAMPLERS:
        n = args.n_long if steps == 1000 else args.n
        x = process.many(process.get("hot"), HotRequest(data="mnist28", sampler=sampler, steps=steps, seed=0), n)
        s = judge.digit_scores(model, x, test)
        rows.append([sampler, steps, n, f"{s['confident']:.3f}", f"{s['frechet']:.2f}"])
        print(rows[-1], flush=True)
        if sampler == "ddim" and steps == 50:
            grid = x[:64]
    columns = ["sampler", "steps", "samples", f"confident share (p ≥ {judge.CONFIDENT})", "Fréchet distance"]
    print("| " + " | ".join(columns) + " |\n|" + " --- |" * len(columns))
    for r in rows:
        print("| " + " | ".join(map(str, r)) + " |")
    if args.write_card:
        folder = pipeline.checkpoint_root() / "hot-mnist28"
        note = (
            f"{args.n} samples per sampler (seeds 0, 1, … per batch of 256), judged by `checkpoints/judge-mnist28` "
            "against the 500 held-out digits; the first row scores 1,000 training digits the same way."
        )
        (folder / "quality.json").write_text(
            json.dumps(
                {
                    "columns": columns,
                    "rows": rows,
                    "note": note,
                    "command": f"python -m bench.mnist_quality --n {args.n} --n-long {args.n_long} --write-card",
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )
        viz.grid(grid, ncol=8, scale=3).save(folder / "samples.png")
        from udm.checkpoint import write_card

        write_card(folder)


if __name__ == "__main__":
    main()
