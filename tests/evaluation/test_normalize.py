from __future__ import annotations

import pytest

from vlit.evaluation.normalize import (
    CONTRACTIONS,
    normalize_answer,
    process_digit_article,
    process_punctuation,
)


@pytest.mark.parametrize(("raw", "expected"), [
    # articles
    ("a dog", "dog"),
    ("The Dog", "dog"),
    ("an apple and the pear", "apple and pear"),
    ("theater", "theater"),
    # number words -> digits ("none" too, as the tool's manualMap has it)
    ("Two", "2"),
    ("ten", "10"),
    ("none", "0"),
    ("eleven", "eleven"),
    ("two dogs", "2 dogs"),
    # contractions get their apostrophe back; written ones stay
    ("dont", "don't"),
    ("don't", "don't"),
    ("Isnt", "isn't"),
    ("yall", "y'all"),
    # periods go unless a digit follows them
    ("yes.", "yes"),
    ("Yes.", "yes"),
    ("2.5", "2.5"),
    ("5.", "5"),
    ("e.g.", "eg"),
    # punctuation inside a word becomes a space, next to a space it is deleted
    ("black/white", "black white"),
    ("black / white", "black white"),
    ("t-shirt", "t shirt"),
    ("yes!", "yes"),
    ("what?", "what"),
    # a comma between digits deletes every punctuation mark of the answer
    ("1,000", "1000"),
    ("1,000 red/blue", "1000 redblue"),
    # colons and apostrophes are not punctuation for the tool
    ("10:30", "10:30"),
    ("man's", "man's"),
    # whitespace
    ("  yes\n", "yes"),
    ("a\tdog", "dog"),
])
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


def test_punctuation_is_looked_up_in_the_original_text() -> None:
    # "-" has a space neighbour only after "/" is removed: the tool checks the original text, so "-" becomes a
    # space while "/" (next to a space) is deleted.
    assert process_punctuation("a/ b-c") == "a b c"
    assert process_punctuation("x (y)") == "x y "


def test_at_most_32_periods_are_removed() -> None:
    # The tool passes re.UNICODE (32) as `count` to re.sub.
    assert process_punctuation("." * 40) == "." * 8


def test_digit_article_keeps_the_tool_quirks() -> None:
    assert CONTRACTIONS["somebody'd"] == "somebodyd"
    assert process_digit_article("somebody'd") == "somebodyd"
    # capitalised keys never match: words are lower-cased first
    assert process_digit_article("Im") == "im"
