from __future__ import annotations

import pickle
from collections import Counter
from itertools import islice

import numpy as np
import pytest

from vlit.data.loading.batching import LengthGroupedBatches, group_batches, padding_fraction
from vlit.data.loading.mixture import Draw, MixtureSampler
from vlit.errors import VlitError

# Dataset "img" holds image rows, "txt" text-only rows; lengths are skewed: mostly short, one in five long.
_rng = np.random.default_rng(0)


def _skewed(n: int) -> np.ndarray:
    return np.where(_rng.random(n) < 0.2, _rng.integers(300, 600, n), _rng.integers(20, 60, n))


LENGTHS = {"img": _skewed(300), "txt": _skewed(200)}


def length(draw: Draw) -> int:
    return int(LENGTHS[draw.dataset][draw.index])


def multimodal(draw: Draw) -> bool:
    return draw.dataset == "img"


def _batches(seed: int = 0) -> LengthGroupedBatches[Draw]:
    sampler = MixtureSampler({"img": 300, "txt": 200}, "proportional", seed=seed)
    return LengthGroupedBatches(sampler, length, multimodal, batch_size=8, group_size=16, seed=seed)


def test_each_batch_holds_one_modality_and_is_sorted_by_length() -> None:
    batches = list(islice(_batches(), 200))
    assert all(len(b) == 8 for b in batches)
    for batch in batches:
        assert len({multimodal(d) for d in batch}) == 1
        assert [length(d) for d in batch] == sorted((length(d) for d in batch), reverse=True)


def test_batches_are_a_permutation_of_the_stream() -> None:
    stream = list(islice(MixtureSampler({"img": 300, "txt": 200}, "proportional", seed=0), 8 * 16 * 6))
    batches = list(islice(_batches(), 16 * 5))  # leftovers wait, so this may reach into mega-batch 6
    served = Counter(d for b in batches for d in b)
    assert sum(served.values()) == len(batches) * 8
    assert not served - Counter(stream)  # nothing invented, nothing served twice


def test_grouping_cuts_padding_against_random_batches() -> None:
    draws = list(islice(MixtureSampler({"img": 300, "txt": 200}, "proportional", seed=0), 8 * 16 * 20))
    random_batches = [[length(d) for d in draws[i:i + 8]] for i in range(0, len(draws), 8)]
    grouped = [[length(d) for d in b] for b in islice(_batches(), len(random_batches) - 2)]
    random_padding, grouped_padding = padding_fraction(random_batches), padding_fraction(grouped)
    assert random_padding > 0.5
    assert grouped_padding < random_padding / 3, (grouped_padding, random_padding)


def test_padding_fraction_by_hand() -> None:
    assert padding_fraction([[3, 1], [2, 2]]) == pytest.approx(2 / 10)
    assert padding_fraction([]) == 0.0


def test_order_within_mega_batch_is_seeded() -> None:
    assert list(islice(_batches(0), 40)) == list(islice(_batches(0), 40))
    assert list(islice(_batches(0), 40)) != list(islice(_batches(1), 40))


def test_exact_resume_mid_mega_batch() -> None:
    original = _batches()
    list(islice(original, 21))  # inside the second mega-batch, with pending batches and leftovers
    state = pickle.loads(pickle.dumps(original.state_dict()))
    expected = list(islice(original, 50))
    resumed = _batches()
    resumed.load_state_dict(state)
    assert list(islice(resumed, 50)) == expected


def test_finite_stream_serves_every_item_including_partial_batches() -> None:
    items = [("img" if i % 3 else "txt", i) for i in range(45)]
    batches = list(LengthGroupedBatches(items, lambda x: x[1] % 7, lambda x: x[0] == "img", 4, 3, seed=0))
    assert sorted(x for b in batches for x in b) == sorted(items)
    assert all(len({x[0] for x in b}) == 1 for b in batches)
    assert sum(len(b) < 4 for b in batches) <= 2  # one partial batch per modality at the very end


def test_group_batches_carries_partial_batches() -> None:
    items = list(range(10))
    batches, carry = group_batches(items, lambda x: x, lambda x: x < 5, batch_size=2, final=False)
    assert batches == [[4, 3], [2, 1], [9, 8], [7, 6]] and sorted(carry) == [0, 5]
    batches, carry = group_batches(items, lambda x: x, lambda x: x < 5, batch_size=2, final=True)
    assert [0] in batches and [5] in batches and carry == []


def test_resume_needs_a_resumable_stream() -> None:
    batches = LengthGroupedBatches(iter(range(10)), lambda x: x, lambda x: True, 2, 2)
    with pytest.raises(VlitError, match="no state_dict"):
        batches.state_dict()
    with pytest.raises(VlitError, match="batch_size"):
        LengthGroupedBatches([], len, bool, 0)
