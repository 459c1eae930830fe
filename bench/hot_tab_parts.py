"""Where the Hot tab's default run (mnist28, DDIM 50, 16 samples) spends its time without Gradio: the
tab's generator called directly (sampling, streamed pictures, the animation, the final pictures), the
sampling loop alone, and the network floor (50 UNet evaluations), alternated; medians.

    python -m bench.hot_tab_parts [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.app_latency import _floor
from udm import core
from udm import hot_pipeline as pipeline
from udm.app import hot

DEFAULTS = ("mnist28", "trained", "ddim", 50, 0.0, 0, 16)


def tab() -> float:
    start = time.perf_counter()
    for _ in hot.generate(*DEFAULTS, progress=lambda *a, **k: None):
        pass
    return time.perf_counter() - start


def loop() -> float:
    start = time.perf_counter()
    core.last(pipeline.hot_plan(hot._request(*DEFAULTS)).steps())
    return time.perf_counter() - start


def floor() -> float:
    return _floor(pipeline.hot_model("mnist28").posterior.eps_model)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    parts = {"the tab's generator": tab, "the sampling loop": loop, "the network floor": floor}
    for f in parts.values():  # warm
        f()
    times = {name: [] for name in parts}
    for _ in range(args.runs):
        for name, f in parts.items():
            times[name].append(f())
    floor_s = statistics.median(times["the network floor"])
    print("| part | seconds | network share |\n| --- | --- | --- |")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"| {name} | {m:.2f} | {floor_s / m:.0%} |")


if __name__ == "__main__":
    main()
