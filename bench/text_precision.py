"""The text BERTs sampled in float32 and in bfloat16 (what udm does where the CPU multiplies bfloat16
natively): valid-word rates and seconds per 1,000 words, the two precisions alternated on the same seeds.

    python -m bench.text_precision [--n 2000] [--only mask-en5]
"""

from __future__ import annotations

import argparse
import time

from udm import judge, text, textmodel
from udm import text_pipeline as tp
from udm.process import get, many

RULES = ("naive", "improved", "confidence")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--only", help="one checkpoint, e.g. mask-en5 (default: all four)")
    args = p.parse_args()
    native = textmodel.BFLOAT16_ON_CPU
    print(f"this CPU multiplies bfloat16 natively: {native}")
    print("| model | rule | valid, float32 | valid, bfloat16 | s / 1000 words, float32 | bfloat16 | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    try:
        for process in ("mask", "edit"):
            for name in text.TEXTS:
                if args.only and args.only != f"{process}-{name}":
                    continue
                for rule in RULES:
                    req = tp.TextRequest(process=process, data=name, sampler=rule)
                    many(get(process), req, 8)  # loaded and warm
                    valid, seconds = {}, {}
                    for low in (False, True):
                        textmodel.BFLOAT16_ON_CPU = low
                        start = time.perf_counter()
                        words = many(get(process), req, args.n)
                        seconds[low] = 1000 * (time.perf_counter() - start) / args.n
                        valid[low] = judge.word_scores(name, words)["valid"]
                    print(
                        f"| {process}-{name} | {rule} | {valid[False]:.3f} | {valid[True]:.3f} | "
                        f"{seconds[False]:.2f} | {seconds[True]:.2f} | {seconds[False] / seconds[True]:.2f} |",
                        flush=True,
                    )
    finally:
        textmodel.BFLOAT16_ON_CPU = native


if __name__ == "__main__":
    main()
