"""IconQA's multiple-choice text subset (choose_txt), scored as InstructBLIP and MiniGPT-v2 do: the model ranks
the choices (`mode: rank`; MiniGPT-v2's `eval_vqa.py` ranks them with `multi_select`) and a question is right
when the best-scored choice is the answer; accuracy over the questions (the `multiple_choice` metric, which
reads a ranked answer, the chosen option's letter, exactly).

PATH is IconQA's release folder (`iconqa/test/choose_txt/<question id>/{data.json, image.png}`, or any folder
of such problem folders), one problem's `data.json` (`question`, `choices`, `answer` index, `ques_type`), or
MiniGPT-v2's evaluation list (`[{image_id, question, choices, answer}]`, images at
`<image root>/<image_id>/image.png`)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.data.prompting.benchmarks import iconqa_prompt
from vlit.data.prompting.styles import LETTERS
from vlit.errors import VlitError
from vlit.evaluation.samples import EvalSample, expect, field_of, read_json
from vlit.evaluation.suites.base import LETTERED, Suite, drawn, shown

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec

SUBSET = "choose_txt"
_SUBSET_FOLDERS = ("test/choose_txt", "iconqa/test/choose_txt", "iconqa_data/iconqa/test/choose_txt", "choose_txt")


def _answer_index(value: Any, options: list[str], where: str) -> int:
    """The answer as an index of the choices: IconQA's `data.json` gives the index, MiniGPT-v2's list may give
    the choice's text."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(options):
        return value
    if isinstance(value, str) and value in options:
        return options.index(value)
    raise VlitError(f"{where}.answer: {value!r} is neither an index nor the text of one of the {len(options)} "
                    "choices")


def _sample(qid: str, problem: Any, where: str, image: Path, render: StyleName, seed: int) -> EvalSample:
    question = field_of(problem, "question", str, where)
    options = [expect(c, str, f"{where}.choices[{i}]") for i, c in enumerate(field_of(problem, "choices", list, where))]
    if not 2 <= len(options) <= len(LETTERS):
        raise VlitError(f"{where}.choices: {len(options)} choices")
    if problem.get("ques_type", SUBSET) != SUBSET:
        raise VlitError(f"{where}.ques_type: {problem['ques_type']!r}, not {SUBSET} (the subset the papers ask)")
    answer = _answer_index(problem.get("answer"), options, where)
    text = iconqa_prompt(render, question, options, answer, random.Random(f"{seed}:{qid}"))
    conversation = Conversation([Turn("user", f"{IMAGE_TOKEN}\n{text}")], [image.as_posix()], qid)
    return EvalSample(qid, conversation, "multiple_choice", [LETTERS[answer]], options, {"question_id": qid})


def _has_problem_folders(folder: Path) -> bool:
    base = next((folder / sub for sub in _SUBSET_FOLDERS if (folder / sub).is_dir()), folder)
    return any((p / "data.json").is_file() for p in base.iterdir())


def _problem_folders(folder: Path) -> list[Path]:
    base = next((folder / sub for sub in _SUBSET_FOLDERS if (folder / sub).is_dir()), folder)
    found = [p for p in base.iterdir() if (p / "data.json").is_file()]
    if not found:
        raise VlitError(f"{folder}: no IconQA problem folders (<id>/data.json) here or in "
                        f"{', '.join(_SUBSET_FOLDERS)}")
    return sorted(found, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def read_iconqa(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    path = Path(bench.path)
    if path.is_dir() and not _has_problem_folders(path):
        # A folder holding one JSON file (a problem's data.json, or MiniGPT-v2's list) reads as that file.
        files = sorted(path.glob("*.json"))
        if len(files) == 1:
            path = files[0]
    if path.is_dir():
        return [_sample(p.name, read_json(p / "data.json"), str(p / "data.json"), p / "image.png", render, seed)
                for p in _problem_folders(path)]
    data = read_json(path)
    if isinstance(data, dict):  # one problem's data.json, its image beside it
        return [_sample(path.parent.name, data, str(path), path.parent / "image.png", render, seed)]
    root = Path(bench.image_root) if bench.image_root else path.parent
    samples = []
    for i, row in enumerate(expect(data, list, str(path))):
        where = f"{path}[{i}]"
        image_id = str(field_of(row, "image_id", (str, int), where))
        qid = str(row.get("question_id", image_id))
        samples.append(_sample(qid, row, where, root / image_id / "image.png", render, seed))
    return samples


ICONQA = Suite(read=read_iconqa, metric="multiple_choice", mode="rank", max_new_tokens=16,
               files="IconQA's iconqa/test/choose_txt folder, a problem's data.json, or MiniGPT-v2's IconQA list",
               prompts={"llava15": shown(iconqa_prompt("llava15", "{question}", LETTERED, 0, random.Random(0))),
                        "instructblip": drawn("multiple_choice"),
                        "minigptv2": shown(iconqa_prompt("minigptv2", "{question}", LETTERED, 0, random.Random(0)))},
               reference="MiniGPT-v2 `eval_vqa.py` (`multi_select`)")
