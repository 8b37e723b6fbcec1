"""ScienceQA (LLaVA's `eval/scienceqa`, which is ScienceQA's `data/scienceqa`): `problems.json` ({pid: question,
choices, answer index, hint, image, split, ...}), `pid_splits.json` (the test pids, in order), LLaVA's
`llava_test_CQM-A.json` (the prompts it asks, in LLaVA's conversation format; optional: built from the problems
when absent) and the images at `images/<split>/<pid>/<image>`. PATH is the folder, or `problems.json` itself.

Scored as LLaVA's `llava/eval/eval_science_qa.py`: an answer is read as a letter when it is exactly one of A-E,
when it starts with `X. `, or when it holds exactly one `The answer is X.`; anything else is FAILED and wrong (the
script's random-choice fallback comes after its `return -1`: dead code). `img_accuracy`, accuracy on the
questions with an image (LLaVA-1.5-7B 66.8, InstructBLIP Vicuna-7B 60.5), is the headline; `accuracy` is over
all questions asked. Styles that answer with the option's text (InstructBLIP, MiniGPT-v2) rank the choices, so
their answers are letters too; a generated option text counts when it equals the right option after the VQA
normalisation (MiniGPT-v2's `eval_sciencevqa.py`)."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.data.prompting.benchmarks import cqm_question, scienceqa_prompt
from vlit.data.prompting.styles import LETTERS, get_style
from vlit.data.reading.fields import find_file
from vlit.data.reading.rows import read_rows
from vlit.errors import VlitError
from vlit.evaluation.normalize import normalize_answer
from vlit.evaluation.samples import EvalSample, expect, field_of, image_path, read_json
from vlit.evaluation.suites.base import LETTERED, Suite, drawn, shown

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec

OPTIONS = ("A", "B", "C", "D", "E")
"""`eval_science_qa.py --options`: the letters an answer may name."""
_ANSWER_IS = re.compile(r"The answer is ([A-Z]).")
_CONTEXT_KEYS = ("subject", "topic", "category", "skill", "grade")


# ---- reading ----------------------------------------------------------------------------------------------

def _cqm_prompts(path: Path | None) -> dict[str, str]:
    """pid -> the question of LLaVA's CQM-A file, `<image>` removed and stripped (as `model_vqa_science.py`)."""
    if path is None:
        return {}
    out = {}
    for where, row in read_rows(path):
        turns = field_of(row, "conversations", list, where)
        if not turns:
            raise VlitError(f"{where}.conversations: empty")
        value = field_of(turns[0], "value", str, f"{where}.conversations[0]")
        out[str(field_of(row, "id", (str, int), where))] = value.replace(IMAGE_TOKEN, "").strip()
    return out


def _test_pids(splits: Path | None, problems: dict[str, Any], where: str) -> list[str]:
    """The test pids in `pid_splits.json`'s order (what `eval_science_qa.py --split test` scores), else the
    problems whose `split` is test."""
    if splits is None:
        return [pid for pid, p in problems.items() if field_of(p, "split", str, f"{where}[{pid}]") == "test"]
    pids = field_of(read_json(splits), "test", list, str(splits))
    for i, pid in enumerate(pids):
        if str(pid) not in problems:
            raise VlitError(f"{splits}.test[{i}]: pid {pid} is not in {where}")
    return [str(pid) for pid in pids]


def scienceqa_sample(pid: str, problem: Any, where: str, image_root: Path | None, style: StyleName,
                     seed: int = 0, cqm: str | None = None) -> EvalSample:
    """One ScienceQA problem asked in `style` (`vlit.data.prompting.benchmarks.scienceqa_prompt`); `cqm` is
    LLaVA's own question text for it, when the kit's file holds it."""
    question = field_of(problem, "question", str, where)
    choices = field_of(problem, "choices", list, where)
    options = [expect(c, str, f"{where}.choices[{i}]") for i, c in enumerate(choices)]
    answer = field_of(problem, "answer", int, where)
    if not 0 <= answer < len(options) or len(options) > len(LETTERS):
        raise VlitError(f"{where}.answer: {answer} is not an index of the {len(options)} choices")
    hint = expect(problem.get("hint") or "", str, f"{where}.hint")
    image = expect(problem.get("image"), (str, type(None)), f"{where}.image")
    split = field_of(problem, "split", str, where)
    text = scienceqa_prompt(style, question, hint, options, answer, random.Random(f"{seed}:{pid}"), cqm)
    images = [] if image is None else [image_path(image_root, f"{split}/{pid}/{image}")]
    turn = Turn("user", f"{IMAGE_TOKEN}\n{text}" if images else text)
    meta = {k: problem[k] for k in _CONTEXT_KEYS if k in problem}
    meta.update(question_id=pid, split=split, has_image=image is not None,
                answer_form=get_style(style).choice_answer)
    return EvalSample(pid, Conversation([turn], images, pid), "multiple_choice", [LETTERS[answer]], options, meta)


def load_scienceqa(problems: str | Path, image_root: str | Path | None = None, split: str | None = "test",
                   images_only: bool = False, style: StyleName = "llava15", seed: int = 0) -> list[EvalSample]:
    """ScienceQA's `problems.json` alone: the problems of `split` (None: every split) in file order,
    `images_only` keeping those with an image (ScienceQA-IMG); images at `<image_root>/<split>/<pid>/<image>`."""
    data = read_json(problems)
    if not isinstance(data, dict):
        raise VlitError(f"{problems}: expected an object of problems keyed by pid, got {type(data).__name__}")
    root = None if image_root is None else Path(image_root)
    samples = []
    for pid, problem in data.items():
        where = f"{problems}[{pid}]"
        if split is not None and field_of(problem, "split", str, where) != split:
            continue
        if images_only and not problem.get("image"):
            continue
        samples.append(scienceqa_sample(pid, problem, where, root, style, seed))
    if not samples:
        raise VlitError(f"{problems}: no problem{' with an image' if images_only else ''} in split {split!r}")
    return samples


def read_scienceqa(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    folder = Path(bench.path)
    problems_path = find_file(folder, ("problems.json",), "ScienceQA problems file")
    base = problems_path.parent
    splits = next((p for p in sorted(base.glob("pid_splits*.json"))), None)
    cqm_path = next((p for p in sorted(base.glob("llava_test_CQM-A*.json"))), None)
    problems = read_json(problems_path)
    if not isinstance(problems, dict):
        raise VlitError(f"{problems_path}: expected an object of problems keyed by pid")
    # LLaVA's prompts are its own: only the llava15 style asks them.
    cqm = _cqm_prompts(cqm_path) if render == "llava15" else {}
    root = Path(bench.image_root) if bench.image_root else base / "images"
    return [scienceqa_sample(pid, problems[pid], f"{problems_path}[{pid}]", root, render, seed, cqm.get(pid))
            for pid in _test_pids(splits, problems, str(problems_path))]


# ---- scoring ----------------------------------------------------------------------------------------------

def llava_choice(text: str, count: int) -> int | None:
    """`eval_science_qa.py`'s reading of an answer to a question with `count` choices: the option index, or
    None (FAILED, or a letter beyond the choices)."""
    if text in OPTIONS:
        letter = text
    elif len(text) >= 3 and text[0] in OPTIONS and text[1:3] == ". ":
        letter = text[0]
    else:
        found = _ANSWER_IS.findall(text)
        letter = found[0] if len(found) == 1 else "FAILED"
    return OPTIONS.index(letter) if letter in OPTIONS[:count] else None


def choice_of(prediction: str, sample: EvalSample) -> int | None:
    """The option a ScienceQA answer picks: LLaVA's letter rule, then, for a style answering with the option's
    text, the option equal to it after the VQA normalisation."""
    index = llava_choice(prediction, len(sample.candidates))
    if index is None and sample.meta.get("answer_form") == "option":
        said = normalize_answer(prediction)
        index = next((i for i, o in enumerate(sample.candidates) if normalize_answer(o) == said), None)
    return index


def scienceqa_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """`img_accuracy` (questions with an image; NaN when none was asked), `accuracy` (all) and `unparsed`."""
    if len(predictions) != len(samples) or not samples:
        raise VlitError(f"scienceqa metric: {len(predictions)} predictions for {len(samples)} samples")
    picks = [choice_of(p, s) for p, s in zip(predictions, samples, strict=True)]
    right = [pick is not None and LETTERS[pick] == s.references[0] for pick, s in zip(picks, samples, strict=True)]
    with_image = [r for r, s in zip(right, samples, strict=True) if s.meta.get("has_image")]
    return {"img_accuracy": sum(with_image) / len(with_image) if with_image else math.nan,
            "accuracy": sum(right) / len(right), "unparsed": sum(p is None for p in picks) / len(picks)}


SCIENCEQA = Suite(read=read_scienceqa, metric="scienceqa",
                  files="LLaVA's eval/scienceqa folder (problems.json, pid_splits.json, llava_test_CQM-A.json)",
                  style_modes={"instructblip": "rank", "minigptv2": "rank"}, max_new_tokens=128,
                  published={"LLaVA-1.5-7B": 66.8, "InstructBLIP Vicuna-7B": 60.5, "InstructBLIP FlanT5-XL": 70.4},
                  prompts={"llava15": shown(scienceqa_prompt("llava15", "{question}", "{hint}", LETTERED, 0,
                                                             random.Random(0))) + " (first line only with a hint)",
                           "instructblip": f"{drawn('multiple_choice')} over "
                                           f"{shown(cqm_question('{question}', '{hint}', ()))}",
                           "minigptv2": shown(scienceqa_prompt("minigptv2", "{question}", "{hint}", LETTERED, 0,
                                                               random.Random(0)))},
                  reference="LLaVA `eval_science_qa.py` (v1.5 answer rule); option texts: MiniGPT-v2 "
                            "`eval_sciencevqa.py`")
