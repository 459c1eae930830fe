"""The four comparison tables of the README, measured in one run on the shipped models.

1. Quality against steps for hot diffusion on MNIST (udm DDPM, DDIM, Analytic-DDPM, Analytic-DDIM and
   diffusers' DPM-Solver++), K ∈ {10, 25, 50, 100, 1000}; samples from one seed per K.
2. Naive against improved for cold (blur, σ = 0.2: generation), mask and edit (en5), at their defaults.
3. Speed: network evaluations and wall time per sample of each sampler (from table 1's runs), and the
   udm-vs-diffusers loop overhead (DDIM, same network, same x_T, same timesteps).
4. Side by side against one after another: for hot, encoding, cold and mask, at a small and a large
   number of samples, one Compare run of its samplers against the sum of the samplers run alone (same
   settings, same run, best of 3), and the ratio.

    python -m bench.compare_tables [--n 256] [--n-text 2000] [--steps 10 25 50 100 1000] [--tables 1 2 3 4]

K = 1000 costs about an hour of this 2-core CPU at --n 256; `--tables 1 --steps 1000` measures it alone.
"""

from __future__ import annotations

import argparse
import time

import torch

from udm import compare, judge, reference
from udm import hot_pipeline as hp

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
        ("mask", "en5", ("naive", "improved", reference.MASK)),
        ("edit", "en5", ("naive", "improved", *reference.EDIT)),
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
            per = 1000 * r.seconds / n / r.batched_with  # samplers in one batch share its time
            rows.append([process, name, r.entry.label, n, fig, f"{per:.2f}"])
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


SIDE_BY_SIDE = (  # (process, data, samplers, samples per sampler): the Compare tab's kinds of run
    ("hot", "mnist28", (("ddpm", 50), ("ddim", 50), ("analytic-ddpm", 50), ("diffusers-dpm-solver++", 20)), 16),
    ("hot", "mnist28", (("ddpm", 50), ("ddim", 50), ("analytic-ddpm", 50), ("diffusers-dpm-solver++", 20)), 64),
    ("encoding", "mnist28", (("ddpm", 50), ("ddim", 50)), 16),
    ("encoding", "mnist28", (("ddpm", 50), ("ddim", 50)), 64),
    ("cold", "mnist28", (("blur σ=0.2 naive", None), ("blur σ=0.2 improved", None)), 16),
    ("cold", "mnist28", (("blur σ=0.2 naive", None), ("blur σ=0.2 improved", None)), 64),
    ("mask", "en5", (("naive", None), ("improved", None), (reference.MASK, 5)), 32),
    ("mask", "en5", (("naive", None), ("improved", None), (reference.MASK, 5)), 2000),
)


def side_by_side() -> list[list]:
    """Per kind of run: one Compare run of its samplers against the sum of the samplers run alone, same
    settings, alternated in one run (best of 3 each); whether the udm samplers shared a network call."""
    rows = []
    for process, name, samplers, n in SIDE_BY_SIDE:
        entries = tuple(compare.Entry(s, k) for s, k in samplers)
        together, alone = float("inf"), float("inf")
        for _ in range(3):
            start = time.perf_counter()
            results = compare.run(compare.Request(process, name, entries, n=n, seed=0), "cpu")
            together = min(together, time.perf_counter() - start)
            stacked = max(r.batched_with for r in results)
            total = 0.0
            for e in entries:
                start = time.perf_counter()
                compare.run(compare.Request(process, name, (e,), n=n, seed=0), "cpu")
                total += time.perf_counter() - start
            alone = min(alone, total)
        labels = ", ".join(e.label for e in entries)
        shared = f"{stacked} in one call" if stacked > 1 else "no (past CPU_STACK_LIMIT)"
        rows.append([process, labels, n, shared, f"{together:.2f}", f"{alone:.2f}", f"{together / alone:.2f}"])
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=256, help="digits per sampler and K")
    p.add_argument("--n-text", type=int, default=2000)
    p.add_argument("--n-cold", type=int, default=128)
    p.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 100, 1000])
    p.add_argument("--tables", type=int, nargs="+", default=[1, 2, 3, 4], choices=[1, 2, 3, 4])
    args = p.parse_args()
    hp.hot_model("mnist28", device="cpu")  # load before any clock starts
    if 1 in args.tables:
        print("## 1. Quality against steps, hot diffusion on MNIST\n")
        q = quality_vs_steps(args.n, args.steps)
        table(["sampler", "K", "confident share", "Fréchet", "network evaluations", "ms / sample"], q)
    if 2 in args.tables:
        print("## 2. Naive against improved\n")
        rows = naive_vs_improved(args.n_cold, args.n_text)
        table(["process", "data", "sampler", "samples", "figures", "ms / sample"], rows)
    if 3 in args.tables:
        print("## 3. Speed\n")
        ratio = overhead()
        print(f"udm / diffusers DDIM loop time (50 steps, batch 64, best of 3): {ratio:.3f}\n")
    if 4 in args.tables:
        print("## 4. Side by side against one after another\n")
        columns = [
            "process",
            "samplers",
            "samples",
            "udm samplers stacked",
            "side by side (s)",
            "one after another (s)",
            "ratio",
        ]
        table(columns, side_by_side())


if __name__ == "__main__":
    main()
