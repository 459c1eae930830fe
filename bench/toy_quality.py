"""Quality of the shipped 2-D and 8×8-digit models, and of the exact mixture model.

2-D: sliced Wasserstein distance of 4,000 samples to 4,000 fresh data points (the first row of each
table is data against data: the noise floor). digits8: Fréchet distance in raw pixel space (64-d) to
the 1,617 training digits, for 1,000 samples.

    python -m bench.toy_quality [--data NAME …] [--write-card]
"""

from __future__ import annotations

import argparse
import json

from udm import data, judge, pipeline, process
from udm.hot_pipeline import HotRequest

SAMPLERS = [("ddpm", 1000), ("ddim", 50), ("analytic-ddim", 50), ("ddpm", 10), ("analytic-ddpm", 10)]


def table(name: str, model: str = "trained") -> tuple[list[str], list[list]]:
    if data.is_image(name):
        ref = data.images(name, "train")[0].flatten(1).double().numpy()
        floor = judge.frechet(data.images(name, "test")[0].flatten(1).double().numpy(), ref)
        rows = [["held-out digits (reference)", "—", f"{floor:.3f}"]]
        for sampler, steps in SAMPLERS:
            x = process.many(
                process.get("hot"), HotRequest(data=name, sampler=sampler, steps=steps, seed=0, model=model), 1000
            )
            rows.append([sampler, steps, f"{judge.frechet(x.flatten(1).double().numpy(), ref):.3f}"])
        return ["sampler", "steps", "pixel Fréchet distance"], rows
    fresh = data.points(name, 4000, seed=1001)
    rows = [
        ["fresh data (noise floor)", "—", f"{judge.sliced_wasserstein(data.points(name, 4000, seed=1002), fresh):.4f}"]
    ]
    for sampler, steps in SAMPLERS:
        x = process.many(
            process.get("hot"), HotRequest(data=name, sampler=sampler, steps=steps, seed=0, model=model), 4000
        )
        rows.append([sampler, steps, f"{judge.sliced_wasserstein(x, fresh):.4f}"])
    return ["sampler", "steps", "sliced Wasserstein to data"], rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--write-card", action="store_true")
    p.add_argument(
        "--data",
        nargs="*",
        default=[*data.POINTS, "digits8", "exact"],
        help="datasets to judge; 'exact' is gaussians8's closed-form model",
    )
    args = p.parse_args()
    jobs = [("gaussians8", "exact") if n == "exact" else (data.check_name(n), "trained") for n in args.data]
    for name, model in jobs:
        columns, rows = table(name, model)
        print(f"\n{name} ({model} model)\n| " + " | ".join(columns) + " |\n|" + " --- |" * len(columns))
        for r in rows:
            print("| " + " | ".join(map(str, r)) + " |", flush=True)
        if args.write_card and model == "trained":
            from udm.checkpoint import write_card

            folder = pipeline.checkpoint_root() / f"hot-{name}"
            (folder / "quality.json").write_text(
                json.dumps(
                    {
                        "columns": columns,
                        "rows": rows,
                        "command": "python -m bench.toy_quality --write-card",
                        "note": __doc__.split("\n\n")[1].replace("\n", " "),
                    },
                    indent=2,
                    ensure_ascii=False,
                )
                + "\n"
            )
            write_card(folder)


if __name__ == "__main__":
    main()
