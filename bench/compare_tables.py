"""The four comparison tables of the README, measured in one run on the shipped models.

1. Quality against steps for hot diffusion on MNIST (udm DDPM, DDIM, Analytic-DDPM, Analytic-DDIM and
   diffusers' DPM-Solver++), K ∈ {10, 25, 50, 100}; samples from one seed per K.
2. Naive against improved for cold (blur, σ = 0.2: generation), mask and edit (en5), at their defaults.
3. Speed: network evaluations and wall time per sample of each sampler (from table 1's runs), and the
   udm-vs-diffusers loop overhead (DDIM, same network, same x_T, same timesteps).
4. Side by side against one after another: one Compare run of four samplers against the sum of the four
   single runs (same settings, same run), and the ratio.

    python -m bench.compare_tables [--n 256] [--n-text 2000]
"""

from __future__ import annotations

import argparse
import time

import torch

from udm import compare, judge
from udm import pipeline as hp

HOT = ("ddpm", "ddim", "analytic-ddpm", "analytic-ddim", "diffusers-dpm-solver++")


def table(columns, rows) -> None:
    print("| " + " | ".join(columns) + " |\n|" + " --- |" * len(columns))
    for r in rows:
        print("| " + " | ".join(map(str, r)) + " |")
    print(flush=True)


def quality_vs_steps(n: int, ks: list[int]) -> list[list]:
    rows = []
    for k in ks:
        udm, reference = HOT[:4], HOT[4:]  # a Compare request takes four samplers
        results = []
        for group in (udm, reference):
            req = compare.Request("hot", "mnist28", tuple(compare.Entry(s, k) for s in group), n=n, seed=0)
            results += compare.run(req, "cpu")
        for r in results:
            f = r.figures
            per = 1000 * r.seconds / n / (r.batched_with or 1)
            rows.append(
                [r.entry.sampler, k, f"{f['confident']:.3f}", f"{f['frechet']:.2f}", r.evaluations, f"{per:.1f}"]
            )
            print(rows[-1], flush=True)
    return rows


def naive_vs_improved(n_cold: int, n_text: int) -> list[list]:
    rows = []
    for process, name, pairs in (
        ("cold", "mnist28", ("blur σ=0.2 naive", "blur σ=0.2 improved")),
        ("mask", "en5", ("naive", "improved", compare.DIFFUSERS_MASK)),
        ("edit", "en5", ("naive", "improved", *compare.DIFFUSERS_EDIT)),
    ):
        n = n_cold if process == "cold" else n_text
        entries = tuple(compare.Entry(s, 5 if s.startswith("diffusers") else None) for s in pairs)
        results = compare.run(compare.Request(process, name, entries, n=n, seed=0), "cpu")
        for r in results:
            if process == "cold":
                d = judge.evaluate("mnist28", r.final)
                fig = f"confident {d['confident']:.3f}, Fréchet {d['frechet']:.1f}, distinct {d['distinct']:.3f}"
            else:
                f = r.figures
                fig = f"valid {f['valid']:.3f}, novel-valid {f['novel_valid']:.3f}, distinct {f['distinct']:.3f}"
            rows.append([process, name, r.entry.label, n, fig, f"{1000 * r.seconds / n:.2f}"])
            print(rows[-1], flush=True)
    return rows


def overhead(repeats: int = 3) -> float:
    from bench.overhead import diffusers_ddim, udm_ddim

    model = hp.hot_model("mnist28", device="cpu")
    x_T = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    best = {"udm": float("inf"), "diffusers": float("inf")}
    for _ in range(repeats):
        for name, fn in (("udm", udm_ddim), ("diffusers", diffusers_ddim)):
            start = time.perf_counter()
            fn(model, x_T, 50)
            best[name] = min(best[name], time.perf_counter() - start)
    return best["udm"] / best["diffusers"]


def side_by_side(n: int) -> tuple[float, float]:
    entries = (
        compare.Entry("ddpm", 50),
        compare.Entry("ddim", 50),
        compare.Entry("analytic-ddpm", 50),
        compare.Entry("diffusers-dpm-solver++", 20),
    )
    start = time.perf_counter()
    compare.run(compare.Request("hot", "mnist28", entries, n=n, seed=0), "cpu")
    together = time.perf_counter() - start
    alone = 0.0
    for e in entries:
        start = time.perf_counter()
        compare.run(compare.Request("hot", "mnist28", (e,), n=n, seed=0), "cpu")
        alone += time.perf_counter() - start
    return together, alone


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=256, help="digits per sampler and K")
    p.add_argument("--n-text", type=int, default=2000)
    p.add_argument("--n-cold", type=int, default=128)
    p.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 100])
    args = p.parse_args()
    hp.hot_model("mnist28", device="cpu")  # load before any clock starts
    print("## 1. Quality against steps, hot diffusion on MNIST\n")
    q = quality_vs_steps(args.n, args.steps)
    table(["sampler", "K", "confident share", "Fréchet", "network evaluations", "ms / sample"], q)
    print("## 2. Naive against improved\n")
    table(
        ["process", "data", "sampler", "samples", "figures", "ms / sample"], naive_vs_improved(args.n_cold, args.n_text)
    )
    print("## 3. Speed\n")
    ratio = overhead()
    print(f"udm / diffusers DDIM loop time (50 steps, batch 64, best of 3): {ratio:.3f}\n")
    print("## 4. Side by side against one after another\n")
    together, alone = side_by_side(64)
    print(
        f"Compare run of ddpm-50, ddim-50, analytic-ddpm-50, dpm-solver++-20 on 64 digits: {together:.1f} s; "
        f"the four run alone: {alone:.1f} s; ratio {together / alone:.2f}"
    )


if __name__ == "__main__":
    main()
