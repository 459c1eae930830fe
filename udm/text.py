"""Fixed-length word lists from `wordfreq` (shipped with the package, nothing downloads) and their
character vocabularies.

`en5`: the 20,000 most frequent English words of exactly five letters a–z. `zh4`: the 24,000 most
frequent Chinese words of exactly four CJK characters. A fixed 90 / 10 train / held-out split of each.
Tokens are character indices 0..V-1; the mask process adds MASK = V.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

import torch

TextName = Literal["en5", "zh4"]
TEXTS: tuple[str, ...] = ("en5", "zh4")
_SPEC = {  # language, pattern, how many words to keep (most frequent first)
    "en5": ("en", re.compile(r"[a-z]{5}"), 20_000),
    "zh4": ("zh", re.compile(r"[\u4e00-\u9fff]{4}"), 24_000),
}
HELD_OUT = 0.10
SPLIT_SEED = 0
MASK_CHAR = "_"  # how a hidden position prints


def check_name(name: str) -> str:
    if name not in TEXTS:
        raise ValueError(f"unknown word list {name!r}; valid: {', '.join(TEXTS)}")
    return name


@cache
def words(name: str) -> tuple[str, ...]:
    """All words of a list, most frequent first."""
    from wordfreq import top_n_list

    lang, pattern, keep = _SPEC[check_name(name)]
    found = [w for w in top_n_list(lang, 1_000_000) if pattern.fullmatch(w)]
    return tuple(dict.fromkeys(found))[:keep]


@cache
def split(name: str, part: Literal["train", "test"] = "train") -> tuple[str, ...]:
    """A fixed 90 / 10 split (seeded permutation, so both parts mix frequent and rare words)."""
    if part not in ("train", "test"):
        raise ValueError(f"unknown split {part!r}; valid: train, test")
    ws = words(name)
    order = torch.randperm(len(ws), generator=torch.Generator().manual_seed(SPLIT_SEED)).tolist()
    n_test = round(HELD_OUT * len(ws))
    idx = order[n_test:] if part == "train" else order[:n_test]
    return tuple(ws[i] for i in idx)


@cache
def word_set(name: str, part: Literal["train", "test", "all"] = "all") -> frozenset[str]:
    """The words of a split (or the whole list) for membership tests."""
    return frozenset(words(name) if part == "all" else split(name, part))


@dataclass(frozen=True)
class Vocab:
    """The characters of a word list: token i is chars[i]; MASK = V is the hidden token."""

    name: str
    chars: str
    length: int

    @property
    def V(self) -> int:
        return len(self.chars)

    @property
    def MASK(self) -> int:
        return len(self.chars)

    @property
    def alphabet(self) -> str:
        """The characters words may hold, as an error message shows them ('?' marks a blank)."""
        chars = "".join(self.chars) if len(self.chars) <= 40 else f"the {len(self.chars):,} characters of its words"
        return f"{chars}, and '?' for a blank"

    def encode(self, ws) -> torch.Tensor:
        """Words (each `length` characters of the vocabulary, MASK_CHAR or '?' for hidden) → (N, l) long."""
        index = {c: i for i, c in enumerate(self.chars)}
        rows = []
        for w in ws:
            if len(w) != self.length:
                raise ValueError(f"{w!r} has {len(w)} characters; {self.name} words have {self.length}")
            row = []
            for c in w:
                if c in (MASK_CHAR, "?"):
                    row.append(self.MASK)
                elif c in index:
                    row.append(index[c])
                else:
                    raise ValueError(f"{c!r} in {w!r} is not a character of {self.name}; allowed: {self.alphabet}")
            rows.append(row)
        return torch.tensor(rows, dtype=torch.long).view(-1, self.length)

    def decode(self, x: torch.Tensor) -> list[str]:
        """(N, l) tokens → strings (MASK prints as MASK_CHAR)."""
        table = self.chars + MASK_CHAR
        return ["".join(table[i] for i in row) for row in x.tolist()]


@cache
def vocab(name: str) -> Vocab:
    ws = words(name)
    return Vocab(name, "".join(sorted(set("".join(ws)))), len(ws[0]))


def tokens(name: str, part: Literal["train", "test", "all"] = "train") -> torch.Tensor:
    """A split (or the whole list) as (N, l) tokens."""
    ws = words(name) if part == "all" else split(name, part)
    return vocab(name).encode(ws)
