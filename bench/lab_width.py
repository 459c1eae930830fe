"""How wide should the Lab's small-image UNet be? The digits aim (8×8 digits, blur + noise, 180 s of
training) with the UNet's two levels at other widths, batch sizes and learning rates: steps taken in the
budget and the readable share of 256 samples per rule (as `bench.lab`).

    python -m bench.lab_width [--seconds 180] [--seeds 1] [--runs 32,64,64,0.002 16,32,128,0.002 ...]

Each run is `channels1,channels2,batch,lr`, trained and sampled at seeds 0 … seeds − 1 (a row per seed, then
their mean). The measured sweep is in docs/figures.md (The Lab).
"""

from __future__ import annotations

import argparse

from bench import lab as bench_lab
from udm import lab
from udm import lab_pipeline as lp

RUNS = ("32,64,64,0.002", "16,32,64,0.002", "16,32,128,0.002", "16,32,64,0.004", "8,16,64,0.004")


def run(c1: int, c2: int, batch: int, lr: float, seconds: float, seed: int = 0) -> tuple[int, float, float]:
    """(steps taken, readable share naive, improved) of one run."""
    base, small_batch, rates = lp.net_config, lp.SMALL_IMAGES_BATCH, dict(lp.LR)

    def config(spec, small=False):
        c = base(spec, small)
        if spec.kind == "images":
            c.update(block_out_channels=(c1, c2), norm_num_groups=min(8, c1 // 2))
        return c

    lp.net_config, lp.SMALL_IMAGES_BATCH, lp.LR["images"] = config, batch, lr
    try:
        training = lp.Training(lab.Spec("digits8", ("blur", "noise")), seconds=seconds, seed=seed)
        for _ in training.steps():
            pass
        f = bench_lab.figures(training.trained(), 256, seed)
    finally:
        lp.net_config, lp.SMALL_IMAGES_BATCH, lp.LR = base, small_batch, rates
    return training.step, f["naive"]["readable"], f["improved"]["readable"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--seeds", type=int, default=1, help="runs of each setting, at seeds 0 … seeds − 1")
    p.add_argument("--runs", nargs="+", default=list(RUNS))
    args = p.parse_args()
    print("| channels | batch | lr | seed | steps | readable, naive | readable, improved |\n" + "| --- " * 7 + "|")
    for spec in args.runs:
        c1, c2, batch, lr = spec.split(",")
        got = []
        for seed in range(args.seeds):
            got.append(run(int(c1), int(c2), int(batch), float(lr), args.seconds, seed))
            steps, naive, improved = got[-1]
            print(f"| {c1}-{c2} | {batch} | {lr} | {seed} | {steps:,} | {naive:.3f} | {improved:.3f} |", flush=True)
        if args.seeds > 1:
            mean = [sum(g[i] for g in got) / len(got) for i in range(3)]
            print(f"| {c1}-{c2} | {batch} | {lr} | mean | {mean[0]:,.0f} | {mean[1]:.3f} | {mean[2]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
