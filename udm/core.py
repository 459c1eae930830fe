"""The UDM contract (UDM.md §1) and the one sampling loop every process uses.

A gradual generative model is three choices:

1. a forward process   x_t = F_t(x_0, ε),            t = 1..T            (`Forward`)
2. a posterior model   q(x_0 | x_t), a network       (`Posterior`)
3. a reverse rule      x̂_0 ~ q(x_0 | x_t), then x_s ~ p(x_s | x_t, x̂_0) for s < t   (`Reverse`)

Shapes: x_0, x_t and x̂_0 are (B, *example_shape); t and s are Python ints shared by the batch
(0 ≤ s < t ≤ T, and x at t = 0 is data).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch


class Forward(Protocol):
    """x_t = F_t(x_0, ε): corrupt data to strength t. Every forward process has this: training draws x_t
    from it, and the naive reverse rule re-corrupts x̂_0 with it."""

    T: int

    def draw(self, x0: torch.Tensor, t: int | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """x_t (B, …) from x_0 (B, …) at an int t, or at a (B,) tensor of per-example timesteps, with the
        randomness drawn from `generator`."""
        ...


class Invertible(Forward, Protocol):
    """A forward process with explicit noise that can be read back: x_t = F_t(x_0, ε) and ε = F_t⁻¹(x_0, x_t).
    The improved reverse rule needs this (x_s = F_s(x̂_0, ε̂) with ε̂ = F_t⁻¹(x̂_0, x_t), UDM.md §1): the
    Gaussian forward (hot, and encoding's latent) and cold's F_t(x_0) + σ ε have it. The discrete
    processes do not: their improved rules read the edit off x_t instead (mask: what is hidden; edit v2:
    where x̂_0 differs from x_t)."""

    def sample(self, x0: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t (B, …) from x_0 and the noise ε (B, …)."""
        ...

    def noise_from(self, x0: torch.Tensor, x_t: torch.Tensor, t: int) -> torch.Tensor:
        """F_t⁻¹(x_0, x_t): the noise that turned x_0 into x_t."""
        ...


def per_timestep(sample, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """`sample(x_0, t, noise)` for an int t, applied to a (B,) tensor of per-example timesteps (a training
    batch): one call per distinct t."""
    out = torch.empty_like(x0)
    for v in t.unique().tolist():
        i = t == v
        out[i] = sample(x0[i], int(v), noise[i])
    return out


class Chunkable(Protocol):
    """A posterior's answer for a batch that is not a plain tensor (e.g. a distribution over tokens)."""

    def chunk(self, n: int) -> Sequence[Any]:
        """The answer split into n answers for n equal consecutive parts of the batch, in order."""
        ...


class Posterior(Protocol):
    """The learned q(x_0 | x_t). What it returns is the process's to say (a mean, logits, a distribution),
    but for runs to share one call (`batch`) the answer must be a tensor with the batch as its first axis
    or have `chunk(n)` (`Chunkable`); and a posterior must compare equal only to one that answers alike."""

    def __call__(self, x_t: torch.Tensor, t: int) -> torch.Tensor | Chunkable: ...


class Reverse(Protocol):
    """A reverse rule: the two moves of one step t → s."""

    def predict_x0(
        self, posterior: Posterior, x_t: torch.Tensor, t: int, s: int, generator: torch.Generator
    ) -> torch.Tensor:
        """x̂_0 ~ q(x_0 | x_t) (B, …)."""
        ...

    def step(self, x_t: torch.Tensor, x0_hat: torch.Tensor, t: int, s: int, generator: torch.Generator) -> torch.Tensor:
        """x_s ~ p(x_s | x_t, x_0 = x̂_0) (B, …)."""
        ...


@dataclass(frozen=True)
class Step:
    """One reverse step t → s: the state before it, the model's guess of x_0, and the state after."""

    index: int  # 0 for the first step (t = T), K - 1 for the last (s = 0)
    t: int
    s: int
    x_t: torch.Tensor
    x0_hat: torch.Tensor
    x_s: torch.Tensor


def sample(
    posterior: Posterior, reverse: Reverse, x_T: torch.Tensor, timesteps: Sequence[int], generator: torch.Generator
) -> Iterator[Step]:
    """Walk x_T down the increasing `timesteps` τ_1 < … < τ_K (then to 0), yielding every step.

    The last record's `x_s` is the sample. Deterministic for a given generator state.
    """
    taus = list(timesteps)
    if not taus or any(b <= a for a, b in zip(taus, taus[1:])) or taus[0] < 1:
        raise ValueError(f"timesteps must be increasing integers ≥ 1, got {taus[:5]}…")
    x = x_T
    pairs = list(zip(reversed(taus), [*reversed(taus[:-1]), 0]))
    for i, (t, s) in enumerate(pairs):
        with torch.no_grad():
            x0_hat = reverse.predict_x0(posterior, x, t, s, generator)
            x_s = reverse.step(x, x0_hat, t, s, generator)
        yield Step(index=i, t=t, s=s, x_t=x, x0_hat=x0_hat, x_s=x_s)
        x = x_s


@dataclass(frozen=True, eq=False)  # (it holds tensors: two plans are equal only if they are one)
class Plan:
    """Everything one run needs: `steps()` walks it with `sample`."""

    posterior: Posterior
    reverse: Reverse
    x_T: torch.Tensor  # (B, …)
    timesteps: tuple[int, ...]
    generator: torch.Generator

    def steps(self) -> Iterator[Step]:
        return sample(self.posterior, self.reverse, self.x_T, self.timesteps, self.generator)

    def batches_with(self, other: Plan) -> bool:
        """Whether the two runs can share one network call per step: the same posterior, step grid and shape."""
        return (
            self.posterior == other.posterior
            and self.timesteps == other.timesteps
            and self.x_T.shape == other.x_T.shape
        )


def batch(plans: Sequence[Plan]) -> Plan:
    """Runs that share a posterior and a step grid as one run over their x_T's stacked in plan order: the
    posterior is evaluated once per step for all of them (`Batched`); the first plan's generator draws
    every chunk's noise, chunk after chunk. One plan is returned as it is: the run alone."""
    first = plans[0]
    if len(plans) == 1:
        return first
    if not all(first.batches_with(p) for p in plans[1:]):
        raise ValueError("only runs with the same posterior, timesteps and x_T shape can be batched")
    reverse = Batched(tuple(p.reverse for p in plans))
    return Plan(first.posterior, reverse, torch.cat([p.x_T for p in plans]), first.timesteps, first.generator)


@dataclass(frozen=True, eq=False)
class Batched:
    """Several reverse rules over one batch of equal chunks, one chunk per rule. The posterior answers the
    whole batch in one call; its answer (a tensor, or a distribution with `.chunk(n)`) is split, and each
    rule takes its two moves on its own chunk as it would alone."""

    reverses: tuple[Reverse, ...]

    def predict_x0(self, posterior: Posterior, x_t: torch.Tensor, t: int, s: int, generator: torch.Generator):
        n = len(self.reverses)
        answers, chunks = posterior(x_t, t).chunk(n), x_t.chunk(n)
        return torch.cat(
            [rev.predict_x0(_Answered(a, c), c, t, s, generator) for rev, a, c in zip(self.reverses, answers, chunks)]
        )

    def step(self, x_t: torch.Tensor, x0_hat: torch.Tensor, t: int, s: int, generator: torch.Generator):
        n = len(self.reverses)
        parts = zip(self.reverses, x_t.chunk(n), x0_hat.chunk(n))
        return torch.cat([rev.step(a, b, t, s, generator) for rev, a, b in parts])


@dataclass(frozen=True, eq=False)
class _Answered:
    """A posterior that has already answered for the chunk `x`: what a batched rule asks in place of the network."""

    answer: Any
    x: torch.Tensor

    def __call__(self, x_t: torch.Tensor, t: int) -> Any:
        if x_t is not self.x:
            raise RuntimeError("a batched reverse rule asked its posterior about another x_t than its own")
        return self.answer


def last(steps: Iterator[Step]) -> Step:
    """Run a sampling generator to its end and return the final record."""
    record = None
    for record in steps:
        pass
    if record is None:
        raise ValueError("the sampler yielded no steps")
    return record
