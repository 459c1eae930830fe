"""How wide should the Lab's small-image UNet be? The digits aim (8×8 digits, blur + noise, 180 s of
training) with the UNet's two levels at other widths, batch sizes and learning rates: steps taken in the
budget and the readable share of 256 samples per rule (as `bench.lab`).

    python -m bench.lab_width [--seconds 180] [--runs 32,64,64,0.002 16,32,64,0.002 16,32,128,0.002 ...]

Each run is `channels1,channels2,batch,lr`. The measured sweep is in docs/figures.md (The Lab).
"""

from __future__ import annotations

import argparse

from bench import lab as bench_lab
from udm import lab
from udm import lab_pipeline as lp

RUNS = ("32,64,64,0.002", "16,32,64,0.002", "16,32,128,0.002", "16,32,64,0.004", "8,16,64,0.004")


def run(c1: int, c2: int, batch: int, lr: float, seconds: float) -> str:
    base, batches, rates = lp.net_config, dict(lp.BATCH), dict(lp.LR)

    def config(spec, small=False):
        c = base(spec, small)
        if spec.kind == "images":
            c.update(block_out_channels=(c1, c2), norm_num_groups=min(8, c1 // 2))
        return c

    lp.net_config, lp.BATCH["images"], lp.LR["images"] = config, batch, lr
    try:
        training = lp.Training(lab.Spec("digits8", ("blur", "noise")), seconds=seconds, seed=0)
        for _ in training.steps():
            pass
        f = bench_lab.figures(training.trained(), 256)
    finally:
        lp.net_config, lp.BATCH, lp.LR = base, batches, rates
    cells = " | ".join(f"{f[r]['readable']:.3f}" for r in ("naive", "improved"))
    return f"| {c1}-{c2} | {batch} | {lr:g} | {training.step} | {cells} |"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--runs", nargs="+", default=list(RUNS))
    args = p.parse_args()
    print("| channels | batch | lr | steps | readable, naive | readable, improved |\n" + "| --- " * 6 + "|")
    for spec in args.runs:
        c1, c2, batch, lr = spec.split(",")
        print(run(int(c1), int(c2), int(batch), float(lr), args.seconds), flush=True)


if __name__ == "__main__":
    main()
