"""Each claim's arms are one ablation apart: their loaded configs differ in exactly the claim's switched fields,
every one of them, and in nothing else (seeds, steps, data, rates: all equal)."""

from __future__ import annotations

import re

import pytest

from vlit.config import Config, load_yaml, recipe_path, to_dict
from vlit.errors import VlitError
from vlit.reproduce.claims import CLAIMS, score_keys, select


def flat(value, prefix: str = "") -> dict[str, object]:
    """A config's plain data as dotted path -> leaf value (list items by index)."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    out: dict[str, object] = {}
    for key, child in items:
        out |= flat(child, f"{prefix}.{key}" if prefix else key)
    return out


def matches(path: str, pattern: str) -> bool:
    """`*` stands for one path segment (a list index)."""
    return re.fullmatch(re.escape(pattern).replace(r"\*", r"[^.]+"), path) is not None


def test_flat_and_matches():
    assert flat({"a": [{"b": 1}, {"b": 2}], "c": None}) == {"a.0.b": 1, "a.1.b": 2, "c": None}
    assert matches("stages.1.data.datasets.3.style", "stages.*.data.datasets.*.style")
    assert not matches("stages.1.data.datasets.3.style.x", "stages.*.data.datasets.*.style")


@pytest.mark.parametrize("claim", list(CLAIMS.values()), ids=list(CLAIMS))
def test_the_arms_differ_in_exactly_the_switched_fields(claim):
    base = flat(to_dict(load_yaml(Config, claim.arms[0].recipe)))
    switched = {path for path in base if any(matches(path, p) for p in claim.switch)}
    assert switched, f"{claim.name}: no field matches {claim.switch}"
    for arm in claim.arms[1:]:
        other = flat(to_dict(load_yaml(Config, arm.recipe)))
        assert other.keys() == base.keys(), arm.recipe
        differing = {path for path in base if base[path] != other[path]}
        assert differing == switched, f"{arm.recipe}: differs in {sorted(differing ^ switched)}"


def test_every_reproduce_recipe_is_an_arm_and_states_its_ablation():
    arms = {a.recipe for c in CLAIMS.values() for a in c.arms}
    files = {f"reproduce/{p.stem}" for p in recipe_path("reproduce/llava15").parent.glob("*.yaml")}
    assert files == arms
    for recipe in arms:
        assert recipe_path(recipe).read_text().startswith("# vlit reproduce"), recipe


def test_claims_are_chosen_by_name_or_number():
    assert [c.name for c in select([])] == list(CLAIMS)
    assert [c.name for c in select(["2", "mlp-connector"])] == ["balanced-sampling", "mlp-connector"]
    with pytest.raises(VlitError, match="not one of"):
        select(["7"])


def test_an_arm_shared_by_claims_is_scored_on_what_each_needs():
    keys = score_keys(list(CLAIMS.values()), "reproduce/llava15")
    assert {"words:open", "words:short", "fmnist_classification", "scenes_spatial"} <= keys
    assert score_keys([CLAIMS["task-identifiers"]], "reproduce/llava15") == set()
