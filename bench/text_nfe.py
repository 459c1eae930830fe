"""Valid words against network evaluations, for every text rule on the shipped en5 BERTs: udm's (the
post's naive and improved, and the reveal rules confidence / margin / remask, k positions per step) and
diffusers' (AmusedScheduler on the mask BERT, DiscreteDDIMScheduler with and without its leave-one-out
corrector on the edit BERT), 2,000 words each, seed 0. Writes each model's rows to its checkpoint folder
(`nfe.json`), which the Compare tab draws.

    python -m bench.text_nfe [--n 2000]
"""

from __future__ import annotations

import argparse
import json

from udm import compare, judge, pipeline, process, text
from udm import text_pipeline as tp

STEPS = (1, 2, 3, 5)  # k for udm's mask rules (network evaluations ⌈5 / k⌉), K for the schedulers


def rows(n: int) -> list[tuple[str, str, int, float, float]]:
    out = []
    length = text.vocab("en5").length
    for name in ("mask", "edit"):
        p = process.get(name)
        for rule in tp.rules(name):
            for k in STEPS if name == "mask" else (1,):
                words = process.many(p, p.request(data="en5", sampler=rule, k=k), n)
                s = judge.word_scores("en5", words)
                out.append((name, rule, -(-length // k), s["valid"], s["novel_valid"]))
                print(out[-1], flush=True)
        for c in p.choices("en5"):
            if not c.reference:
                continue
            for K in STEPS:
                entry = compare.Entry(c.sampler, K)
                (r,) = compare.run(compare.Request(name, "en5", (entry,), n=n, seed=0))
                out.append((name, c.sampler, r.evaluations, r.figures["valid"], r.figures["novel_valid"]))
                print(out[-1], flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    args = p.parse_args()
    table = rows(args.n)
    print("| model | rule | network evaluations | valid | novel-valid |\n| --- | --- | --- | --- | --- |")
    for name, rule, nfe, valid, novel in sorted(table, key=lambda r: (r[0], r[1], r[2])):
        print(f"| {name} | {rule} | {nfe} | {valid:.3f} | {novel:.3f} |")
    for name in ("mask", "edit"):
        keys = ("rule", "evaluations", "valid", "novel_valid")
        out = {
            "note": f"{args.n} words per row, seed 0; valid: in the full en5 list. Measured by `python -m bench.text_nfe`.",
            "rows": [
                dict(zip(keys, (rule, nfe, round(v, 3), round(nv, 3)))) for m, rule, nfe, v, nv in table if m == name
            ],
        }
        (pipeline.checkpoint_root() / f"{name}-en5" / "nfe.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
