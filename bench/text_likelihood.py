"""The mask models' improved rule (k = 1), measured exactly rather than by sampling (`udm.likelihood`):
the probability it gives every word of the list, summed over the training words, the held-out words
(novel-valid) and both (valid); and its bits per word on each split: how much worse it finds the words it
never saw than the ones it learnt (the gap), and than a list drawn at random (log₂ of the list's size).

    python -m bench.text_likelihood [FOLDER ...] [--write-card]

FOLDER: mask checkpoint folders (default: the shipped checkpoints/mask-en5 and mask-zh4); --write-card
writes likelihood.json into each, which its model card shows.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from udm import likelihood, text, textmodel
from udm.pipeline import checkpoint_root

COLUMNS = ["checkpoint", "valid", "training list", "novel-valid", "off-list valid", "bits, training",
           "bits, held-out", "gap", "s"]  # fmt: skip


def measure(folder: Path, write_card: bool = False) -> list[str]:
    start = time.perf_counter()
    model, meta = textmodel.load(folder)
    if meta["process"] != "mask":
        raise SystemExit(f"{folder}: a {meta['process']} checkpoint; this bench measures mask models")
    name = meta["data"]
    vocab = text.vocab(name)
    posterior = textmodel.NeuralPosterior(model, vocab, "mask")
    train = likelihood.improved_probability(posterior, text.tokens(name, "train"), vocab.MASK, vocab.V)
    held = likelihood.improved_probability(posterior, text.tokens(name, "test"), vocab.MASK, vocab.V)
    seen, novel = float(train.sum()), float(held.sum())
    bits_train, bits_held = likelihood.log2_mean(train), likelihood.log2_mean(held)
    if write_card:
        figures = {"valid": seen + novel, "training list": seen, "novel-valid": novel,
                   "off-list valid": novel / max(1e-12, 1 - seen), "bits, training": bits_train,
                   "bits, held-out": bits_held, "bits, a list at random": math.log2(len(text.words(name)))}  # fmt: skip
        out = {k: round(v, 4) for k, v in figures.items()} | {"command": "python -m bench.text_likelihood --write-card"}
        (folder / "likelihood.json").write_text(json.dumps(out, indent=2) + "\n")
        textmodel.write_card(folder)
    return [
        f"{folder.name} ({name})",
        f"{seen + novel:.4f}",
        f"{seen:.4f}",
        f"{novel:.4f}",
        f"{novel / max(1e-12, 1 - seen):.4f}",
        f"{bits_train:.2f}",
        f"{bits_held:.2f}",
        f"{bits_held - bits_train:.2f}",
        f"{time.perf_counter() - start:.0f}",
    ]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("folders", nargs="*", type=Path)
    p.add_argument("--write-card", action="store_true", help="write likelihood.json into each folder")
    args = p.parse_args()
    folders = args.folders or [checkpoint_root() / f"mask-{n}" for n in text.TEXTS]
    torch.manual_seed(0)
    rows = []
    for folder in folders:
        rows.append(measure(folder, args.write_card))
        print(rows[-1], flush=True)
    for name in sorted({r[0].split("(")[1].rstrip(")") for r in rows}):
        print(f"{name}: a list drawn at random costs log2({len(text.words(name))}) = "
              f"{math.log2(len(text.words(name))):.2f} bits per word")  # fmt: skip
    print("| " + " | ".join(COLUMNS) + " |")
    print("| " + " | ".join("---" for _ in COLUMNS) + " |")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
