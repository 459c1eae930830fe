"""Where the edit model loses words: the post's improved rule (and the confidence order) run with the
edit BERT alone, with its last step taken by the mask BERT (the shipped posterior, `--model trained`:
`udm.discrete.OneEdit`), with the exact posterior of the training list, with the product of that posterior's
per-position marginals (the form of the BERT's answer, fitted perfectly), and with the exact posterior at
some steps only; then the last steps alone, on training words with t wrong letters.

    python -m bench.edit_steps [--data en5] [--n 2000]
"""

from __future__ import annotations

import argparse

import torch

from udm import core, discrete, judge, text
from udm import text_pipeline as tp


class Marginals:
    """The exact posterior's per-position marginals as independent categoricals (`discrete.Factorized`)."""

    def __init__(self, exact: discrete.ExactPosterior, V: int):
        self.exact, self.V = exact, V

    def __call__(self, x_t: torch.Tensor, t: int) -> discrete.Factorized:
        return discrete.Factorized(self.exact(x_t, t).marginals(self.V).clamp_min(1e-12).log())


class Mixed:
    """The exact posterior at the steps in `exact_at`, the trained one elsewhere."""

    def __init__(self, exact_at: tuple[int, ...], exact, trained):
        self.exact_at, self.exact, self.trained = set(exact_at), exact, trained

    def __call__(self, x_t: torch.Tensor, t: int):
        return (self.exact if t in self.exact_at else self.trained)(x_t, t)


def valid(name: str, posterior, rule: str, n: int, seed: int = 0) -> float:
    """Valid share of n words by `rule` from random letters (the edit process's x_T)."""
    v = text.vocab(name)
    x = torch.randint(0, v.V, (n, v.length), generator=torch.Generator().manual_seed(seed))
    plan = discrete.plan(
        posterior, discrete.EditReverse(rule, v.V), x, v.length, torch.Generator().manual_seed(seed + 1)
    )
    return judge.word_scores(name, v.decode(core.last(plan.steps()).x_s))["valid"]


def from_training_words(name: str, posterior, t: int, n: int, seed: int = 0) -> tuple[float, float]:
    """(valid, the word itself) shares after the improved rule's last t steps from training words with t
    letters replaced (v2: each by another letter)."""
    v = text.vocab(name)
    g = torch.Generator().manual_seed(seed)
    words = text.tokens(name, "train")
    x0 = words[torch.randint(len(words), (n,), generator=g)]
    x = discrete.EditForward(v.length, v.V, distinct=True).draw(x0, t, g)
    plan = discrete.plan(posterior, discrete.EditReverse("improved", v.V), x, t, g)
    out = core.last(plan.steps()).x_s
    return judge.word_scores(name, v.decode(out))["valid"], (out == x0).all(1).float().mean().item()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="en5", choices=text.TEXTS)
    p.add_argument("--n", type=int, default=2000)
    args = p.parse_args()
    name, n = args.data, args.n
    v = text.vocab(name)
    exact = tp.exact("edit", name, "edit-v2")
    trained = tp.posterior(tp.TextRequest(process="edit", data=name, sampler="improved", model="bert-only"))
    shipped = tp.posterior(tp.TextRequest(process="edit", data=name, sampler="improved"))
    print(f"edit {name}, {n} words from random letters (valid: in the full list)\n")
    print("| posterior | improved | confidence |\n| --- | --- | --- |")
    for label, post in (
        ("trained BERT", trained),
        ("trained BERT, the mask BERT at t = 1 (Bayes' rule)", shipped),
        ("exact (the training list)", exact),
        ("product of the exact marginals", Marginals(exact, v.V)),
    ):
        print(f"| {label} | {valid(name, post, 'improved', n):.3f} | {valid(name, post, 'confidence', n):.3f} |")
    print("\n| exact posterior at t = | improved, valid |\n| --- | --- |")
    steps = range(1, v.length + 1)
    for at in [(), *[(t,) for t in steps], (1, 2), (1, 2, 3)]:  # each step alone, then the last ones together
        label = ", ".join(map(str, at)) or "none (the trained BERT throughout)"
        print(f"| {label} | {valid(name, Mixed(at, exact, trained), 'improved', n):.3f} |")
    print("\n| from a training word with t letters replaced | valid | the word itself |\n| --- | --- | --- |")
    for t in (1, 2):
        for label, post in (("trained", trained), ("the mask BERT at t = 1", shipped), ("exact", exact)):
            ok, same = from_training_words(name, post, t, n)
            print(f"| t = {t}, {label} | {ok:.3f} | {same:.3f} |")


if __name__ == "__main__":
    main()
