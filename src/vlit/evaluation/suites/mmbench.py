"""MMBench and MMBench-CN (LLaVA's `eval/mmbench` and `eval/mmbench_cn`: `mmbench_dev_20230712.tsv`,
`mmbench_dev_cn_20231003.tsv`; columns `index, question, hint, A..D, answer, category, l2-category, ...`, the
image as base64; see `mmbench_tsv`). PATH is the folder or the TSV.

Asked as LLaVA's `model_vqa_mmbench.py`: the options are the A-D cells up to the first empty one; the hint
line, the question, the lettered options and the letter instruction. CircularEval, as MMBench defines it: a
question is right only when every circular shift of its options is answered right. A TSV that holds the shifted
copies (rows `index + k * 1e6`, the 2023 releases) is asked row by row and grouped by `index % 1e6`, as
VLMEvalKit groups them; a TSV without copies is asked once per shift, as LLaVA's `--all-rounds` does (round r
shows the options shifted by r; LLaVA's answers file then repeats the question id, round by round).

Answers are read as VLMEvalKit's `can_infer` does in its `exact_matching` mode (no ChatGPT extractor): the one
option letter standing alone in the answer (punctuation `.()[],:;!*#{}` split off), else the one option whose
text occurs in the lower-cased answer. `circular_accuracy` (LLaVA-1.5-7B 64.3) is the headline, by category
and l2-category too; the submission is LLaVA's `convert_mmbench_for_submission.py` xlsx."""

from __future__ import annotations

import csv
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.data.prompting.benchmarks import mmbench_prompt
from vlit.data.prompting.styles import LETTERS
from vlit.data.reading.fields import find_file
from vlit.errors import VlitError
from vlit.evaluation.samples import EvalSample
from vlit.evaluation.suites.base import JOINED, LETTERED, Suite, drawn, shown
from vlit.evaluation.suites.mmbench_tsv import TsvRow, cell, iter_tsv, read_tsv

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec

log = logging.getLogger(__name__)

OPTION_COLUMNS = ("A", "B", "C", "D")
"""LLaVA's `all_options`: the columns read as options."""
COPY_OFFSET = 1_000_000
"""Circular copies of question i are rows i + k * 1e6."""
SUBMISSION_DROPS = ("hint", "category", "source", "image", "comment", "l2-category")
_REFUSALS = ("Sorry, I can't help with images of people yet.", "I can't process this file.",
             "I'm sorry, but without the image provided", "Cannot determine the answer")


# ---- reading ----------------------------------------------------------------------------------------------

def _options(row: TsvRow) -> list[str]:
    options = []
    for column in OPTION_COLUMNS:
        value = row.values.get(column)
        if value is None:
            break
        options.append(value)
    if len(options) < 2:
        raise VlitError(f"{row.where}.A: fewer than two options")
    return options


def _sample(row: TsvRow, options: list[str], answer: int | None, shift: int, sample_id: str, group: int,
            render: StyleName, seed: int, chinese: bool, source: Path) -> EvalSample:
    shown = options[shift:] + options[:shift]
    right = None if answer is None else (answer - shift) % len(options)
    rng = random.Random(f"{seed}:{sample_id}")
    question = row.values.get("question")
    if question is None:
        raise VlitError(f"{row.where}.question: empty")
    text = mmbench_prompt(render, question, row.values.get("hint"), shown,
                          right if right is not None else 0, rng, chinese)
    meta = {"question_id": row.index, "group": group, "main": row.index < COPY_OFFSET and shift == 0,
            "category": row.values.get("category"), "l2-category": row.values.get("l2-category"),
            "shift": shift, "source": str(source)}
    conversation = Conversation([Turn("user", f"{IMAGE_TOKEN}\n{text}")], [row.image], sample_id)
    return EvalSample(sample_id, conversation, "multiple_choice", [] if right is None else [LETTERS[right]],
                      shown, meta)


def _answer(row: TsvRow, options: list[str], needed: bool) -> int | None:
    letter = row.values.get("answer")
    if letter is None:
        if needed:
            raise VlitError(f"{row.where}.answer: missing (other rows have one)")
        return None
    if letter not in LETTERS[: len(options)]:
        raise VlitError(f"{row.where}.answer: {letter!r} is not the letter of one of the {len(options)} options")
    return LETTERS.index(letter)


def read_mmbench(bench, style, render: StyleName, seed: int, frame: ImageSpec | None,
                 chinese: bool = False) -> list[EvalSample]:
    path = find_file(Path(bench.path), ("mmbench_dev*.tsv", "*.tsv"), "MMBench TSV")
    rows = read_tsv(path, bench.image_root)
    # A test split has no answers: it is asked (for the submission), not scored.
    scored = any(r.values.get("answer") is not None for r in rows)
    copies = any(r.index >= COPY_OFFSET for r in rows)
    samples = []
    for row in rows:
        options = _options(row)
        answer = _answer(row, options, scored)
        if copies:
            samples.append(_sample(row, options, answer, 0, str(row.index), row.index % COPY_OFFSET, render, seed,
                                   chinese, path))
            continue
        for shift in range(len(options)):
            samples.append(_sample(row, options, answer, shift, f"{row.index}#r{shift}", row.index, render, seed,
                                   chinese, path))
    return samples


def read_mmbench_cn(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    return read_mmbench(bench, style, render, seed, frame, chinese=True)


# ---- scoring ----------------------------------------------------------------------------------------------

def can_infer_option(answer: str, letters: Sequence[str]) -> str | None:
    """VLMEvalKit's `can_infer_option`: the one letter of `letters` standing alone in the answer, "Z" for a
    refusal or a lone Z, else None. (Its check for "A" used as an article runs only when VERBOSE is set.)"""
    if "Failed to obtain answer via API" in answer:
        return None
    if any(refusal in answer for refusal in _REFUSALS):
        return "Z"
    for char in ".()[],:;!*#{}":
        answer = answer.replace(char, " ")
    words = answer.split()
    found = [letter for letter in letters if letter in words]
    if len(found) == 1:
        return found[0]
    return "Z" if not found and "Z" in words else None


def can_infer_text(answer: str, choices: dict[str, str]) -> str | None:
    """VLMEvalKit's `can_infer_text`: the one option whose lower-cased text occurs in the lower-cased answer."""
    said = answer.lower()
    found = [letter for letter, text in choices.items() if text.lower() in said]
    return found[0] if len(found) == 1 else None


def can_infer(answer: str, options: Sequence[str]) -> str | None:
    """The letter VLMEvalKit reads from an answer to these options (`can_infer`), or None."""
    choices = dict(zip(LETTERS, options, strict=False))
    return can_infer_option(answer, list(choices)) or can_infer_text(answer, choices)


def mmbench_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """`circular_accuracy` over the main questions (right when every shift is), the same per `category` and
    `l2-category` (`<name>/circular_accuracy`), and `shift_accuracy` over every asked row. A split without
    answers (test) scores NaN: its numbers come from the evaluation server."""
    if len(predictions) != len(samples) or not samples:
        raise VlitError(f"mmbench metric: {len(predictions)} predictions for {len(samples)} samples")
    if not any(s.references for s in samples):
        return {"circular_accuracy": float("nan"), "shift_accuracy": float("nan")}
    right = [can_infer(p, s.candidates) == s.references[0] for p, s in zip(predictions, samples, strict=True)]
    groups: dict[int, list[bool]] = {}
    mains: dict[int, EvalSample] = {}
    for ok, sample in zip(right, samples, strict=True):
        groups.setdefault(sample.meta["group"], []).append(ok)
        if sample.meta["main"]:
            mains[sample.meta["group"]] = sample
    if not mains:
        raise VlitError("mmbench metric: no main question (index < 1e6, first shift) among the samples")
    hits = {group: all(groups[group]) for group in mains}
    out = {"circular_accuracy": sum(hits.values()) / len(hits), "shift_accuracy": sum(right) / len(right)}
    for key in ("l2-category", "category"):
        names = sorted({str(s.meta.get(key)) for s in mains.values() if s.meta.get(key) is not None})
        for name in names:
            members = [hits[g] for g, s in mains.items() if str(s.meta.get(key)) == name]
            out[f"{name}/circular_accuracy"] = sum(members) / len(members)
    return out


# ---- submission -------------------------------------------------------------------------------------------

def mmbench_submission(samples: list[EvalSample], predictions: list[str], folder: Path) -> Path:
    """LLaVA's `convert_mmbench_for_submission.py`: the TSV without hint, category, source, image, comment and
    l2-category, a `prediction` column inserted sixth; a row's prediction is the last answer given under its
    index (with `--all-rounds`, the last shift's). An xlsx (openpyxl, `pip install vlit[eval]`), else the same
    columns as TSV."""
    source = Path(samples[0].meta["source"])
    answers = {str(s.meta["question_id"]): p for s, p in zip(samples, predictions, strict=True)}
    rows = iter_tsv(source)
    table: list[list[object]] = []
    header: list[str] = []
    for _, raw in rows:
        if not header:
            header = [c for c in raw if c not in SUBMISSION_DROPS]
            header.insert(min(6, len(header)), "prediction")
        values = {k: cell(v) for k, v in raw.items()} | {"prediction": answers.get(str(int(raw["index"])))}
        table.append([int(values["index"]) if c == "index" else values[c] for c in header])
    try:
        from openpyxl import Workbook
    except ImportError:
        path = folder / f"{source.stem}.tsv"
        log.warning("openpyxl is not installed: the MMBench submission is written as TSV (%s), not xlsx", path)
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t")
            writer.writerow(header)
            writer.writerows([["" if v is None else v for v in row] for row in table])
        return path
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in table:
        sheet.append(row)
    path = folder / f"{source.stem}.xlsx"
    book.save(path)
    return path


def _prompts(chinese: bool) -> dict[str, str]:
    """How each style asks MMBench (`Suite.prompts`)."""
    def ask(style: StyleName, options: tuple[str, ...]) -> str:
        text = mmbench_prompt(style, "{question}", "{hint}", options, 0, random.Random(0), chinese)
        return f"{shown(text)} (`{{hint}}` line only with a hint)"
    return {"llava15": ask("llava15", LETTERED),
            "instructblip": f"{drawn('multiple_choice')} over the hint and question",
            "minigptv2": ask("minigptv2", JOINED)}


REFERENCE = "VLMEvalKit CircularEval (`can_infer`)"
MMBENCH = Suite(read=read_mmbench, metric="mmbench", files="LLaVA's eval/mmbench folder (mmbench_dev_20230712.tsv)",
                style_modes={"instructblip": "rank"}, max_new_tokens=128, submission=mmbench_submission,
                published={"LLaVA-1.5-7B": 64.3}, prompts=_prompts(chinese=False), reference=REFERENCE)
MMBENCH_CN = Suite(read=read_mmbench_cn, metric="mmbench", style_modes={"instructblip": "rank"},
                   files="LLaVA's eval/mmbench_cn folder (mmbench_dev_cn_20231003.tsv)", max_new_tokens=128,
                   submission=mmbench_submission, published={"LLaVA-1.5-13B": 63.6}, prompts=_prompts(chinese=True),
                   reference=REFERENCE)
