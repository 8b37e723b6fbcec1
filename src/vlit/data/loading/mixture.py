"""Draw training examples from several datasets: which dataset (sqrt / proportional / uniform, times weights),
and which row (a fresh seeded permutation per dataset epoch, so every row is seen once per epoch).

InstructBLIP samples dataset d of size S_d with probability sqrt(S_d) / sum_i sqrt(S_i): small datasets are
not drowned by large ones, nor overfitted as they would be under uniform sampling. The sampler is an endless
iterator whose whole position (generator state plus per-dataset cursors) is a small dict, so a resumed run
continues the exact sequence.
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Literal, NamedTuple

import numpy as np

from vlit.config.data import MixtureConfig
from vlit.errors import VlitError

Sampling = Literal["sqrt", "proportional", "uniform"]


class Draw(NamedTuple):
    dataset: str
    index: int
    epoch: int
    """How many times this dataset had been fully seen before this row: the epoch to render it in."""


def mixture_probabilities(sizes: dict[str, int], sampling: Sampling,
                          weights: dict[str, float]) -> dict[str, float]:
    """p_d proportional to weight_d * (sqrt(S_d) | S_d | 1), normalised to sum to one."""
    base = {
        "sqrt": lambda s: math.sqrt(s),
        "proportional": lambda s: float(s),
        "uniform": lambda s: 1.0,
    }
    if sampling not in base:
        raise VlitError(f"sampling: {sampling!r} is not one of {', '.join(map(repr, base))}")
    raw = {name: base[sampling](size) * weights[name] for name, size in sizes.items()}
    total = sum(raw.values())
    if total <= 0:
        raise VlitError("mixture: every dataset has weight 0")
    return {name: value / total for name, value in raw.items()}


class MixtureSampler:
    """Endless `Draw(dataset, index, epoch)` stream over datasets of the given sizes.

    `weights` maps dataset names to multipliers (missing names weigh 1.0).
    """

    def __init__(self, sizes: dict[str, int], sampling: Sampling = "sqrt",
                 weights: dict[str, float] | None = None, seed: int = 0) -> None:
        if not sizes:
            raise VlitError("mixture: no datasets")
        empty = [name for name, size in sizes.items() if size <= 0]
        if empty:
            raise VlitError(f"mixture: dataset {empty[0]!r} has no rows")
        weights = dict(weights or {})
        unknown = sorted(set(weights) - set(sizes))
        if unknown:
            raise VlitError(f"mixture: weight given for unknown dataset {unknown[0]!r}")
        self.sizes = dict(sizes)
        self.sampling = sampling
        negative = [name for name, w in weights.items() if w < 0]
        if negative:
            raise VlitError(f"mixture: weight of {negative[0]!r} must be >= 0, got {weights[negative[0]]}")
        self.weights = {name: float(weights[name]) if name in weights else 1.0 for name in sizes}
        self.seed = seed
        self._names = list(sizes)
        self._probabilities = mixture_probabilities(self.sizes, sampling, self.weights)
        self._cumulative = np.cumsum([self._probabilities[n] for n in self._names])
        self._cumulative[-1] = 1.0
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._cursors = {name: [0, 0] for name in self._names}
        self._permutations: dict[str, tuple[int, np.ndarray]] = {}

    @classmethod
    def from_config(cls, cfg: MixtureConfig, sizes: dict[str, int]) -> MixtureSampler:
        """The sampler of a mixture config, given each dataset's (loaded) size."""
        return cls(sizes, cfg.sampling, {d.name: d.weight for d in cfg.datasets}, cfg.seed)

    def probabilities(self) -> dict[str, float]:
        return dict(self._probabilities)

    def describe(self) -> str:
        """One line for the training log: effective percentage per dataset."""
        parts = [f"{name} {100 * p:.1f}% ({self.sizes[name]} rows, weight {self.weights[name]:g})"
                 for name, p in self._probabilities.items()]
        return f"{self.sampling} sampling over {len(parts)} dataset(s): " + ", ".join(parts)

    def _permutation(self, name: str, epoch: int) -> np.ndarray:
        cached = self._permutations.get(name)
        if cached is None or cached[0] != epoch:
            # Seeded by (seed, dataset, epoch) alone, so a restored cursor needs no saved permutation.
            rng = np.random.default_rng([self.seed, zlib.crc32(name.encode()), epoch])
            cached = (epoch, rng.permutation(self.sizes[name]))
            self._permutations[name] = cached
        return cached[1]

    def __iter__(self) -> MixtureSampler:
        return self

    def __next__(self) -> Draw:
        # side="right" never lands on a zero-probability dataset, whose cumulative value equals its left one.
        slot = int(np.searchsorted(self._cumulative, self._rng.random(), side="right"))
        name = self._names[min(slot, len(self._names) - 1)]
        cursor = self._cursors[name]
        epoch, position = cursor
        index = int(self._permutation(name, epoch)[position])
        cursor[1] += 1
        if cursor[1] == self.sizes[name]:
            cursor[0], cursor[1] = epoch + 1, 0
        return Draw(name, index, epoch)

    def state_dict(self) -> dict[str, Any]:
        """Plain Python values (JSON-serialisable): generator state, per-dataset [epoch, position], sizes."""
        return {
            "rng": self._rng.bit_generator.state,
            "cursors": {name: list(cursor) for name, cursor in self._cursors.items()},
            "sizes": dict(self.sizes),
            "seed": self.seed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["sizes"] != self.sizes or state["seed"] != self.seed:
            raise VlitError(f"mixture state: taken with datasets {state['sizes']} and seed {state['seed']}, "
                            f"not {self.sizes} and seed {self.seed}")
        self._rng.bit_generator.state = state["rng"]
        self._cursors = {name: [int(e), int(p)] for name, (e, p) in state["cursors"].items()}
