"""How few steps? Quality against network evaluations and against CPU time for every hot sampler on
MNIST (udm's and diffusers'), on the shipped model.

For each sampler and each budget of network evaluations (NFE): the largest K whose run takes at most that
many evaluations (Heun takes 2K − 1), n samples judged by `checkpoints/judge-mnist28` (Fréchet distance
to the 500 held-out digits, the confident share), and the wall time of one 16-digit run (the Hot tab's
default), the median of `--repeats` runs taken in turn across all samplers so that machine noise falls on
all alike. Prints a table and writes `checkpoints/hot-mnist28/pareto.json`, which the Compare tab draws.

    python -m bench.pareto [--n 1000] [--evals 4 10 25] [--parts quality time] [--repeats 3] [--only NAME ...]

`--parts time` alone re-times the rows of an existing pareto.json (quality is the costly part: about
30 minutes of one core at --n 1000).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from udm import core, data, judge, pipeline, process, reference
from udm.hot_pipeline import HotRequest

DATA = "mnist28"
FILE = "pareto.json"


STUDENT = "distilled "  # a row of the distilled student: "distilled RULE"
STUDENT_RULES = ("ddim", "ddpm")


def samplers() -> list[tuple[str, str]]:
    """(sampler, family) for every hot sampler Compare offers, and the distilled student's rules when its
    checkpoint is there (`python -m udm distill`)."""
    out = [(c.sampler, "diffusers" if c.reference else "udm") for c in process.get("hot").choices(DATA)]
    if (pipeline.checkpoint_root() / f"hot-{DATA}-distilled").is_dir():
        out += [(STUDENT + rule, "distilled") for rule in STUDENT_RULES]
    return out


def steps_for(sampler: str, evals: int) -> int:
    """The largest K whose run takes at most `evals` network evaluations."""
    if sampler.startswith(STUDENT):
        from udm.hot_pipeline import hot_model

        return min(evals, len(hot_model(DATA, "distilled").timesteps))
    k = evals
    while k > 1 and reference.evaluations(sampler, k) > evals:
        k -= 1
    return k


def final(sampler: str, steps: int, n: int, seed: int = 0) -> torch.Tensor:
    """n samples in [0, 1], in batches of the request limit (seeds seed, seed + 1, … as `process.many`)."""
    p = process.get("hot")
    if sampler.startswith(STUDENT):
        req = HotRequest(data=DATA, model="distilled", sampler=sampler[len(STUDENT) :], steps=steps, seed=seed)
        return process.many(p, req, n)
    choice = p.choice(DATA, sampler)
    if not choice.reference:
        return process.many(p, HotRequest(data=DATA, sampler=sampler, steps=steps, seed=seed), n)
    size, parts = p.max_samples(DATA), []
    for i, start in enumerate(range(0, n, size)):
        m = min(size, n - start)
        parts.append(p.decode(DATA, core.last(p.reference_steps(choice, DATA, m, seed + i, steps, None, None)).x_s))
    return torch.cat(parts)


def seconds(sampler: str, steps: int, n: int = 16) -> float:
    start = time.perf_counter()
    final(sampler, steps, n)
    return time.perf_counter() - start


def quality(n: int, evals: list[int], only: list[str] | None = None) -> list[dict]:
    model = judge.load_classifier()
    test, _ = data.images(DATA, "test")
    rows = []
    for sampler, family in samplers():
        if only and sampler not in only:
            continue
        for e in evals:
            k = steps_for(sampler, e)
            s = judge.digit_scores(model, final(sampler, k, n), test)
            rows.append(
                dict(
                    sampler=sampler,
                    family=family,
                    steps=k,
                    evaluations=reference.evaluations(sampler, k),
                    frechet=round(s["frechet"], 2),
                    confident=round(s["confident"], 3),
                    samples=n,
                )
            )
            print(rows[-1], flush=True)
    return rows


def timing(rows: list[dict], repeats: int) -> None:
    seconds(rows[0]["sampler"], rows[0]["steps"])  # load the model and warm up once
    spent: dict[int, list[float]] = {i: [] for i in range(len(rows))}
    for _ in range(repeats):
        for i, r in enumerate(rows):
            spent[i].append(seconds(r["sampler"], r["steps"]))
    for i, r in enumerate(rows):
        r["seconds_16"] = round(statistics.median(spent[i]), 3)


def references() -> dict[str, float]:
    """DDPM-1000 and real digits, as `bench.mnist_quality` measured them on this model."""
    q = json.loads((pipeline.checkpoint_root() / "hot-mnist28" / "quality.json").read_text())
    out = {}
    for row in q["rows"]:
        if row[0].startswith("training digits"):
            out["real digits"] = float(row[4])
        elif row[0] == "ddpm" and int(row[1]) == 1000:
            out["ddpm, 1000 steps"] = float(row[4])
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--evals", type=int, nargs="+", default=[4, 10, 25])
    p.add_argument("--parts", nargs="+", choices=("quality", "time"), default=["quality", "time"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--only", nargs="+", help="measure these samplers' quality again, keep the file's other rows")
    args = p.parse_args()
    file = pipeline.checkpoint_root() / "hot-mnist28" / FILE
    if "quality" in args.parts:
        rows = quality(args.n, args.evals, args.only)
        if args.only:  # the other samplers' rows stay as measured before
            kept = [r for r in json.loads(file.read_text())["rows"] if r["sampler"] not in args.only]
            rows = kept + rows
    else:
        rows = json.loads(file.read_text())["rows"]
    if "time" in args.parts:
        timing(rows, args.repeats)
    out = {
        "note": (
            f"{rows[0]['samples']} samples per row judged by judge-mnist28 against the 500 held-out digits; "
            f"seconds_16: wall time of one 16-digit run on {torch.get_num_threads()} CPU threads, median of "
            f"{args.repeats} runs taken in turn. Measured by `python -m bench.pareto`."
        ),
        "references": references(),
        "rows": rows,
    }
    file.write_text(json.dumps(out, indent=2) + "\n")
    student = [r for r in rows if r["family"] == "distilled"]
    if student:  # the student's own card shows its rows
        from udm import distill

        folder = pipeline.checkpoint_root() / f"hot-{DATA}-distilled"
        (folder / "quality.json").write_text(json.dumps({"note": out["note"], "rows": student}, indent=2) + "\n")
        distill.write_card(folder)
    columns = ["sampler", "steps", "evaluations", "Fréchet", "confident", "s / 16 digits"]
    print("| " + " | ".join(columns) + " |\n|" + " --- |" * len(columns))
    for r in sorted(rows, key=lambda r: (r["evaluations"], r["frechet"])):
        t = r.get("seconds_16", "—")
        print(f"| {r['sampler']} | {r['steps']} | {r['evaluations']} | {r['frechet']} | {r['confident']} | {t} |")
    print("references:", out["references"])


if __name__ == "__main__":
    main()
