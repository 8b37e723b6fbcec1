"""Reading answers out of free model text: option letters, option texts, yes/no, boxes.

Generated answers are sloppy ("The answer is B.", "(B) cat", "Yes, there is a dog."); these readers are
lenient and never raise: what cannot be read is `None` and scores as wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vlit.data.loading.transforms import Box, ImageSpec
from vlit.data.prompting import boxes as bx
from vlit.data.prompting.styles import LETTERS
from vlit.evaluation.normalize import normalize_answer

_OPEN, _CLOSE = r"[(\[]", r"[)\].:]"
_BARE = re.compile(rf"^\s*{_OPEN}?\s*([A-Za-z])\s*{_CLOSE}?\s*$")
"""The whole answer is a letter: "B", "(B)", "B.", "[B]", "b"."""
_LEADING = re.compile(rf"^\s*{_OPEN}?([A-Z]){_CLOSE}")
"""A letter with its bracket or period leads the answer: "B. cat", "(B) cat", "B) cat", "B: cat"."""
_KEYWORD = re.compile(rf"(?i:\b(?:answer|option|choice)\b)(?:\s+(?i:is|would be|should be))?\s*:?\s*{_OPEN}?"
                      r"([A-Z])(?![\w'])")
"""A letter after "answer"/"option"/"choice": "The answer is B", "Answer: B) cat", "option (C)". Only the
keyword ignores case: "the answer is a cat" names no letter."""
_LETTER_TOKEN = re.compile(r"(?<![\w'])([A-Z])(?![\w'])")
_WORD_USE = re.compile(r"\s+[a-z]")
"""After "A" or "I", a lower-case word means the article or the pronoun, not a letter."""


def _letter_index(letter: str, options: Sequence[str]) -> int | None:
    index = LETTERS.index(letter)
    return index if index < len(options) else None


def _standalone_letter(text: str, options: Sequence[str]) -> int | None:
    found = set()
    for m in _LETTER_TOKEN.finditer(text):
        if m.group(1) in "AI" and _WORD_USE.match(text, m.end()):
            continue
        index = _letter_index(m.group(1), options)
        if index is not None:
            found.add(index)
    return found.pop() if len(found) == 1 else None


def extract_option(text: str, options: Sequence[str]) -> int | None:
    """The index of the option `text` names by its words: equal to it after the VQA normalisation, else the
    only option whose words occur in it (an option inside a longer matching one does not count: "cat" in
    "black cat"). None when no option or several do."""
    said = normalize_answer(text)
    normal = [normalize_answer(o) for o in options]
    for i, option in enumerate(normal):
        if option and option == said:
            return i
    hits = {i for i, option in enumerate(normal) if option and f" {option} " in f" {said} "}
    longest = {i for i in hits if not any(j != i and f" {normal[i]} " in f" {normal[j]} " for j in hits)}
    return longest.pop() if len(longest) == 1 else None


def extract_choice(text: str, options: Sequence[str]) -> int | None:
    """The index of the option a multiple-choice answer picks, or None.

    Tried in order: the whole answer is a letter ("B", "(B)", "B."); it is an option's text; a letter with a
    bracket or period leads it ("B) cat"); a letter follows "answer"/"option"/"choice" ("The answer is B");
    it names exactly one option's text ("I think it is a cat"); exactly one option letter stands alone in it.
    Letters beyond the options are not choices.
    """
    m = _BARE.match(text)
    if m and (index := _letter_index(m.group(1).upper(), options)) is not None:
        return index
    said = normalize_answer(text)
    for i, option in enumerate(options):
        if said and normalize_answer(option) == said:
            return i
    for pattern in (_LEADING, _KEYWORD):
        m = pattern.search(text)
        if m and (index := _letter_index(m.group(1), options)) is not None:
            return index
    index = extract_option(text, options)
    return index if index is not None else _standalone_letter(text, options)


def pope_answer(text: str) -> str:
    """POPE's reading of a yes/no answer (LLaVA's `eval_pope.py`, verbatim rule): keep the first sentence,
    drop commas, and answer "no" when the words "No", "no" or "not" occur, else "yes"."""
    first = text.split(".")[0] if "." in text else text
    words = first.replace(",", "").split(" ")
    return "no" if any(w in words for w in ("No", "no", "not")) else "yes"


def extract_box(text: str, image_size: Sequence[int], frame: ImageSpec | None = None) -> Box | None:
    """The first box of a grounding answer in pixels of the original image, read by the one box reader
    (`vlit.data.prompting.boxes.read_boxes`: MiniGPT-v2's grid `{<x1><y1><x2><y2>}` at cell centres, else
    LLaVA-1.5's `[x1, y1, x2, y2]` in 0..1) in the model's `frame` and mapped back. None when there is none."""
    found = bx.read_boxes(text, *image_size, frame=frame)
    return found[0][1] if found else None
