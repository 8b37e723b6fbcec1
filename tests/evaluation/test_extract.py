"""`vlit.evaluation.extract`: reading option letters, option texts, yes/no and boxes out of free answers."""

from __future__ import annotations

import pytest

from vlit.data.prompting.boxes import from_grid
from vlit.evaluation.extract import extract_box, extract_choice, extract_option, pope_answer

OPTIONS = ["dog", "cat", "black cat", "bird"]


@pytest.mark.parametrize(("text", "expected"), [
    ("B", 1), ("(B)", 1), ("B.", 1), ("b", 1), (" [C] ", 2),
    ("The answer is B", 1), ("The answer is B.", 1), ("Answer: B) cat", 1), ("the correct option is (D).", 3),
    ("B. cat", 1), ("C) black cat", 2),
    ("cat", 1), ("Cat.", 1), ("A bird.", 3), ("I think it is a black cat", 2),
    ("I would say D", 3),
    ("E", None), ("horse", None), ("dog or bird", None), ("", None),
    ("A", 0),
])
def test_extract_choice(text: str, expected: int | None) -> None:
    assert extract_choice(text, OPTIONS) == expected


def test_extract_option_prefers_the_longer_option() -> None:
    assert extract_option("it is a black cat", OPTIONS) == 2
    assert extract_option("a cat", OPTIONS) == 1
    assert extract_option("a dog and a cat", OPTIONS) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("Yes", "yes"), ("yes.", "yes"), ("No", "no"), ("No, there is no dog.", "no"),
    ("There is not a dog in the image.", "no"), ("Yes. No dog is hiding.", "yes"), ("NO", "yes"),
    ("I cannot tell", "yes"),
])
def test_pope_answer(text: str, expected: str) -> None:
    # POPE's rule: anything without "No", "no" or "not" in the first sentence counts as yes.
    assert pope_answer(text) == expected


def test_extract_box_grid_and_unit() -> None:
    assert extract_box("{<10><10><50><50>}", (100, 200)) == from_grid((10, 10, 50, 50), 100, 200)
    assert extract_box("It is at [0.10, 0.10, 0.50, 0.50].", (100, 200)) == pytest.approx((10, 20, 50, 100))
    assert extract_box("no box here", (100, 200)) is None
