"""Where should K steps lie? udm's samplers on the shipped MNIST model with each time grid of
`schedule.spaced` (even, quadratic, log-SNR), 1,000 samples per row judged by `checkpoints/judge-mnist28`
(Fréchet distance to the 500 held-out digits, the confident share).

    python -m bench.spacing [--n 1000] [--steps 5 10] [--samplers ddim ddpm analytic-ddim]
"""

from __future__ import annotations

import argparse

from udm import data, judge, process, schedule
from udm.hot_pipeline import HotRequest


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--steps", type=int, nargs="+", default=[5, 10])
    p.add_argument("--samplers", nargs="+", default=["ddim", "ddpm", "analytic-ddim"])
    args = p.parse_args()
    model = judge.load_classifier()
    test, _ = data.images("mnist28", "test")
    hot = process.get("hot")
    print("| sampler | K | " + " | ".join(f"Fréchet, {s}" for s in schedule.SPACINGS) + " |")
    print("| --- | --- |" + " --- |" * len(schedule.SPACINGS))
    for k in args.steps:
        for sampler in args.samplers:
            cells = []
            for spacing in schedule.SPACINGS:
                req = HotRequest(data="mnist28", sampler=sampler, steps=k, seed=0, spacing=spacing)
                s = judge.digit_scores(model, process.many(hot, req, args.n), test)
                cells.append(f"{s['frechet']:.1f} ({s['confident']:.2f})")
            print(f"| {sampler} | {k} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n{args.n} samples per cell, seed 0; in brackets the confident share (p ≥ {judge.CONFIDENT}).")


if __name__ == "__main__":
    main()
