"""Words from the mask and edit models: valid / novel-valid / distinct rates, naive vs improved (and the
reveal rules from elsewhere: confidence, margin, remask), trained BERT vs the exact posterior of the
training list, both word lists.

valid: the word is in the full list; novel-valid: it is in the held-out 10 % (never trained on);
off-list valid: of the samples outside the training list, the share that are held-out words (how word-like
a model's attempts beyond what it was shown are, whatever their number); distinct: unique share.

    python -m bench.text_quality [--n 2000] [--write-card]
"""

from __future__ import annotations

import argparse
import json
import time

from udm import judge, text
from udm import text_pipeline as tp
from udm.pipeline import checkpoint_root
from udm.process import get, many
from udm.textmodel import write_card

COLUMNS = [
    "process",
    "data",
    "model",
    "sampler",
    "valid",
    "novel-valid",
    "off-list valid",
    "distinct",
    "s / 1000 words",
]


def off_list_valid(name: str, words: list[str]) -> float:
    """Of the samples outside the training list, the share in the held-out list (0 when none is outside)."""
    seen, held = text.word_set(name, "train"), text.word_set(name, "test")
    off = [w for w in words if w not in seen]
    return sum(w in held for w in off) / max(1, len(off))


def rows_for(process: str, name: str, n: int, temperature: float = 1.0) -> list[list]:
    rows = []
    length = text.vocab(name).length
    runs = [(m, s, 1) for m in tp.models(process) for s in ("naive", "improved")]
    runs += [("trained", rule, 1) for rule in tp.rules(process)[2:]]  # the reveal rules from elsewhere
    if process == "mask":
        runs.append(("trained", "improved", length))  # every position in one step: parallel decoding
    for model in tp.models(process):  # load each posterior first, so that no row's time includes the loading
        many(get(process), tp.TextRequest(process=process, data=name, model=model), 1)
    for model, sampler, k in runs:
        start = time.perf_counter()
        req = tp.TextRequest(process=process, data=name, sampler=sampler, model=model, k=k, temperature=temperature)
        words = many(get(process), req, n)
        seconds = time.perf_counter() - start
        s = judge.word_scores(name, words)
        label = sampler if k == 1 else f"{sampler}, k = {k}"
        rows.append(
            [
                process,
                name,
                model,
                label,
                f"{s['valid']:.3f}",
                f"{s['novel_valid']:.3f}",
                f"{off_list_valid(name, words):.3f}",
                f"{s['distinct']:.3f}",
                f"{1000 * seconds / n:.2f}",
            ]
        )
        print(rows[-1], " ".join(words[:8]), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--write-card", action="store_true", help="write quality.json into each text checkpoint")
    p.add_argument("--only", help="one checkpoint, e.g. mask-en5 (default: all four)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (the cards: 1)")
    args = p.parse_args()
    if args.write_card and args.temperature != 1.0:
        p.error("--write-card measures at temperature 1")
    every = []
    for process in ("mask", "edit"):
        for name in text.TEXTS:
            if args.only and args.only != f"{process}-{name}":
                continue
            rows = rows_for(process, name, args.n, args.temperature)
            every += rows
            if args.write_card:
                folder = checkpoint_root() / f"{process}-{name}"
                note = (
                    f"{args.n} samples per row (seed 0). valid: in the full `{name}` list; novel-valid: in the "
                    "held-out 10 % the model never saw; off-list valid: of the samples outside the training list, the "
                    "share that are held-out words; distinct: unique share. exact: the true q(x_0|x_t) "
                    "of the training list."
                    + (
                        f" trained: the edit BERT, its last step (t = 1) by mask-{name} (Bayes' rule) at that "
                        "model's calibrated temperature; bert-only: the edit BERT at every step."
                        if process == "edit"
                        else " trained: the BERT at its calibrated temperature (Calibration, above)."
                    )
                )
                command = f"python -m bench.text_quality --n {args.n} --write-card" + (
                    f" --only {args.only}" if args.only else ""
                )
                q = {"columns": COLUMNS, "rows": rows, "note": note, "command": command}
                (folder / "quality.json").write_text(json.dumps(q, indent=2, ensure_ascii=False) + "\n")
                write_card(folder)
    print("| " + " | ".join(COLUMNS) + " |\n|" + " --- |" * len(COLUMNS))
    for r in every:
        print("| " + " | ".join(map(str, r)) + " |")


if __name__ == "__main__":
    main()
