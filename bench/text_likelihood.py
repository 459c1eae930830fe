"""The mask models' improved rule (k = 1), measured exactly rather than by sampling (`udm.likelihood`):
the probability it gives every word of the list, summed over the training words, the held-out words
(novel-valid) and both (valid); and its bits per word on each split: how much worse it finds the words it
never saw than the ones it learnt (the gap), and than a list drawn at random (log₂ of the list's size).

    python -m bench.text_likelihood [FOLDER ...] [--write-card]

FOLDER: mask checkpoint folders (default: the shipped checkpoints/mask-en5 and mask-zh4), each measured at
its calibrated temperature and at 1; --write-card writes likelihood.json into each, which its model card
shows.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from udm import likelihood, text, textmodel
from udm.pipeline import checkpoint_root

COLUMNS = ["checkpoint", "temperature", "valid", "training list", "novel-valid", "off-list valid", "bits, training",
           "bits, held-out", "gap", "s"]  # fmt: skip


def measure(folder: Path, calibrate: bool = True) -> dict[str, float]:
    """The exact figures of the mask checkpoint in `folder` at its calibrated temperature (or at 1), and the
    seconds they took."""
    start = time.perf_counter()
    model, meta = textmodel.load(folder, calibrate=calibrate)
    if meta["process"] != "mask":
        raise SystemExit(f"{folder}: a {meta['process']} checkpoint; this bench measures mask models")
    name = meta["data"]
    train, held = likelihood.on_splits(textmodel.NeuralPosterior(model, text.vocab(name), "mask"), name)
    seen, novel = float(train.sum()), float(held.sum())
    return {
        "temperature": meta["calibration"]["temperature"] if calibrate and "calibration" in meta else 1.0,
        "valid": seen + novel,
        "training list": seen,
        "novel-valid": novel,
        "off-list valid": novel / max(1e-12, 1 - seen),
        "bits, training": likelihood.log2_mean(train),
        "bits, held-out": likelihood.log2_mean(held),
        "bits, a list at random": math.log2(len(text.words(name))),
        "s": time.perf_counter() - start,
    }


def row(folder: Path, f: dict[str, float]) -> list[str]:
    shares = [f"{f[k]:.4f}" for k in ("valid", "training list", "novel-valid", "off-list valid")]
    bits = [f"{f[k]:.2f}" for k in ("bits, training", "bits, held-out")]
    gap = f"{f['bits, held-out'] - f['bits, training']:.2f}"
    return [folder.name, f"{f['temperature']:g}", *shares, *bits, gap, f"{f['s']:.0f}"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("folders", nargs="*", type=Path)
    p.add_argument("--write-card", action="store_true", help="write likelihood.json into each folder")
    args = p.parse_args()
    rows = []
    for folder in args.folders or [checkpoint_root() / f"mask-{n}" for n in text.TEXTS]:
        figures = measure(folder)
        raw = measure(folder, calibrate=False) if figures["temperature"] != 1 else None
        if args.write_card:
            out = {k: round(v, 4) for k, v in figures.items() if k != "s"}
            if raw is not None:
                out["at temperature 1"] = {k: round(v, 4) for k, v in raw.items() if k not in ("s", "temperature")}
            out["command"] = "python -m bench.text_likelihood --write-card"
            (folder / "likelihood.json").write_text(json.dumps(out, indent=2) + "\n")
            textmodel.write_card(folder)
        for f in (figures, raw) if raw is not None else (figures,):
            rows.append(row(folder, f))
            print(rows[-1], f"(a list drawn at random: {f['bits, a list at random']:.2f} bits)", flush=True)
    print("| " + " | ".join(COLUMNS) + " |")
    print("| " + " | ".join("---" for _ in COLUMNS) + " |")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
