from __future__ import annotations

import json
from collections import Counter
from itertools import islice

import pytest

from vlit.config.data import DatasetConfig, MixtureConfig
from vlit.data.loading.mixture import Draw, MixtureSampler
from vlit.errors import VlitError

SIZES = {"small": 100, "big": 10_000, "mid": 900}


def test_sqrt_probabilities_are_exact() -> None:
    probs = MixtureSampler({"a": 100, "b": 10_000}, "sqrt").probabilities()
    assert probs["a"] == pytest.approx(1 / 11, abs=1e-12)
    assert probs["b"] == pytest.approx(10 / 11, abs=1e-12)


@pytest.mark.parametrize(("sampling", "expected"), [
    ("sqrt", {"small": 10 / 140, "big": 100 / 140, "mid": 30 / 140}),
    ("proportional", {"small": 100 / 11_000, "big": 10_000 / 11_000, "mid": 900 / 11_000}),
    ("uniform", {"small": 1 / 3, "big": 1 / 3, "mid": 1 / 3}),
])
def test_empirical_proportions_match(sampling: str, expected: dict[str, float]) -> None:
    sampler = MixtureSampler(SIZES, sampling, seed=1)
    assert sampler.probabilities() == pytest.approx(expected)
    n = 100_000
    counts = Counter(d.dataset for d in islice(sampler, n))
    for name, p in expected.items():
        assert abs(counts[name] / n - p) < 0.01, (name, counts[name] / n, p)


def test_weights_multiply_then_renormalise() -> None:
    sampler = MixtureSampler({"a": 100, "b": 10_000}, "sqrt", weights={"a": 10.0}, seed=0)
    assert sampler.probabilities() == pytest.approx({"a": 0.5, "b": 0.5})
    zero = MixtureSampler({"a": 100, "b": 400}, "uniform", weights={"a": 0.0, "b": 2.0})
    assert zero.probabilities() == {"a": 0.0, "b": 1.0}
    assert {d.dataset for d in islice(zero, 2000)} == {"b"}
    assert "a 0.0% (100 rows, weight 0)" in zero.describe() and "b 100.0%" in zero.describe()


def test_from_config_uses_dataset_weights() -> None:
    cfg = MixtureConfig([DatasetConfig("a", "a.json", weight=3.0), DatasetConfig("b", "b.json")], "uniform",
                        seed=5)
    sampler = MixtureSampler.from_config(cfg, {"a": 10, "b": 10})
    assert sampler.probabilities() == pytest.approx({"a": 0.75, "b": 0.25})
    assert sampler.seed == 5


def test_bad_arguments_are_vlit_errors() -> None:
    with pytest.raises(VlitError, match="'e' has no rows"):
        MixtureSampler({"a": 1, "e": 0})
    with pytest.raises(VlitError, match="unknown dataset 'z'"):
        MixtureSampler({"a": 1}, weights={"z": 1.0})
    with pytest.raises(VlitError, match="weight 0"):
        MixtureSampler({"a": 1}, weights={"a": 0.0})
    with pytest.raises(VlitError, match="'median' is not one of"):
        MixtureSampler({"a": 1}, "median")  # type: ignore[arg-type]


def test_same_seed_same_sequence_other_seed_other_sequence() -> None:
    first = list(islice(MixtureSampler(SIZES, seed=3), 500))
    assert first == list(islice(MixtureSampler(SIZES, seed=3), 500))
    assert first != list(islice(MixtureSampler(SIZES, seed=4), 500))
    assert all(isinstance(d, Draw) for d in first)


def test_restore_mid_stream_continues_identically() -> None:
    sampler = MixtureSampler(SIZES, seed=7)
    list(islice(sampler, 1234))  # past the end of "small"'s first epoch, into its second
    state = json.loads(json.dumps(sampler.state_dict()))  # a checkpoint survives JSON
    expected = list(islice(sampler, 3000))
    resumed = MixtureSampler(SIZES, seed=7)
    resumed.load_state_dict(state)
    assert list(islice(resumed, 3000)) == expected
    with pytest.raises(VlitError, match="mixture state"):
        MixtureSampler({**SIZES, "small": 99}, seed=7).load_state_dict(state)


def test_every_row_once_per_dataset_epoch() -> None:
    sampler = MixtureSampler({"a": 7, "b": 50}, "uniform", seed=2)
    seen: dict[tuple[str, int], list[int]] = {}
    for draw in islice(sampler, 2000):
        seen.setdefault((draw.dataset, draw.epoch), []).append(draw.index)
    complete = {key: rows for key, rows in seen.items() if len(rows) == {"a": 7, "b": 50}[key[0]]}
    assert len([k for k in complete if k[0] == "a"]) >= 100 and len([k for k in complete if k[0] == "b"]) >= 15
    for (name, _), rows in complete.items():
        assert sorted(rows) == list(range({"a": 7, "b": 50}[name]))
    epochs_a = [rows for (name, _), rows in sorted(complete.items()) if name == "a"]
    assert epochs_a[0] != epochs_a[1]  # reshuffled each epoch
