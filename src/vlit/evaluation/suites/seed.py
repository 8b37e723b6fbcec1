"""SEED-Bench (LLaVA's `eval/seed_bench`, or the official release): `SEED-Bench.json` (`questions`: question,
choice_a..choice_d, answer letter, data_type, data_id, question_id, question_type_id; `question_type`: name ->
id), the images in `SEED-Bench-image/<data_id>`, and LLaVA's `llava-seed-bench.jsonl` when present (its prompt
and image path per question_id). PATH is the folder or the JSON. Only the image questions are asked (SEED-IMG,
question types 1-9): the video ones need frames LLaVA extracts with its own script.

Scored as LLaVA's `scripts/convert_seed_for_submission.py` (`eval_single(..., eval_only_type='image')`): an
answer is right when its text equals the answer letter exactly; accuracy per question type
(`<type name>/accuracy`) and over all asked (`accuracy`, the headline). The submission is its upload JSONL of
`{question_id, prediction}`, for the questions asked."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.data.prompting.benchmarks import seed_prompt
from vlit.data.prompting.styles import LETTERS
from vlit.data.reading.fields import find_file
from vlit.data.reading.rows import read_rows
from vlit.errors import VlitError
from vlit.evaluation.samples import EvalSample, field_of, image_path, read_json
from vlit.evaluation.suites.base import EVAL_STYLES, JOINED, LETTERED, Suite, shown

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec

CHOICES = ("choice_a", "choice_b", "choice_c", "choice_d")


def _llava_rows(path: Path | None) -> dict[str, dict[str, Any]]:
    """question_id -> LLaVA's question row (`image`, `text`)."""
    if path is None:
        return {}
    out = {}
    for where, row in read_rows(path):
        field_of(row, "text", str, where)
        out[str(field_of(row, "question_id", (str, int), where))] = row
    return out


def _sample(question: Any, where: str, types: dict[int, str], llava: dict[str, Any], root: Path,
            render: StyleName, seed: int) -> EvalSample:
    qid = field_of(question, "question_id", (str, int), where)
    text = field_of(question, "question", str, where)
    options = [field_of(question, key, str, where) for key in CHOICES]
    answer = field_of(question, "answer", str, where)
    if answer not in LETTERS[: len(options)]:
        raise VlitError(f"{where}.answer: {answer!r} is not one of A-D")
    type_id = field_of(question, "question_type_id", int, where)
    if type_id not in types:
        raise VlitError(f"{where}.question_type_id: {type_id} is not in the file's question_type map")
    row = llava.get(str(qid))
    if render == "llava15" and row is not None:
        prompt = row["text"]  # LLaVA's own prompt, asked as written
    else:
        prompt = seed_prompt(render, text, options, LETTERS.index(answer), random.Random(f"{seed}:{qid}"))
    image = str(row["image"]) if row is not None and "image" in row else \
        f"SEED-Bench-image/{field_of(question, 'data_id', str, where)}"
    conversation = Conversation([Turn("user", f"{IMAGE_TOKEN}\n{prompt}")], [image_path(root, image)], str(qid))
    meta = {"question_id": qid, "question_type_id": type_id, "question_type": types[type_id]}
    return EvalSample(str(qid), conversation, "multiple_choice", [answer], options, meta)


def read_seed(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    path = find_file(Path(bench.path), ("SEED-Bench*.json", "seed*.json"), "SEED-Bench annotation file")
    llava = next(iter(sorted(path.parent.glob("llava-seed-bench*.jsonl"))), None)
    data = read_json(path)
    questions = field_of(data, "questions", list, str(path))
    names = field_of(data, "question_type", dict, str(path))
    types = {type_id: name for name, type_id in names.items()}
    rows = _llava_rows(llava)
    root = Path(bench.image_root) if bench.image_root else path.parent
    samples = [_sample(q, f"{path}.questions[{i}]", types, rows, root, render, seed)
               for i, q in enumerate(questions) if field_of(q, "data_type", str, f"{path}.questions[{i}]") == "image"]
    if not samples:
        raise VlitError(f"{path}: no image question (data_type 'image')")
    return samples


def seed_metrics(predictions: Sequence[str], samples: Sequence[EvalSample]) -> dict[str, float]:
    """Exact-match accuracy per question type (in type-id order) and over all."""
    if len(predictions) != len(samples) or not samples:
        raise VlitError(f"seed metric: {len(predictions)} predictions for {len(samples)} samples")
    by_type: dict[int, list[bool]] = {}
    names: dict[int, str] = {}
    for prediction, sample in zip(predictions, samples, strict=True):
        type_id = sample.meta["question_type_id"]
        by_type.setdefault(type_id, []).append(prediction == sample.references[0])
        names[type_id] = sample.meta["question_type"]
    out = {f"{names[t]}/accuracy": sum(by_type[t]) / len(by_type[t]) for t in sorted(by_type)}
    right = [ok for values in by_type.values() for ok in values]
    return {"accuracy": sum(right) / len(right)} | out


def seed_submission(samples: list[EvalSample], predictions: list[str], folder: Path) -> Path:
    """The upload JSONL LLaVA writes: `{"question_id": <as in the JSON>, "prediction": <answer text>}`."""
    path = folder / "seed_bench.upload.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for sample, prediction in zip(samples, predictions, strict=True):
            f.write(json.dumps({"question_id": sample.meta["question_id"], "prediction": prediction}) + "\n")
    return path


SEED = Suite(read=read_seed, metric="seed", files="LLaVA's eval/seed_bench folder (SEED-Bench.json, "
             "llava-seed-bench.jsonl, SEED-Bench-image/)", style_modes={"instructblip": "rank", "minigptv2": "rank"},
             max_new_tokens=128, submission=seed_submission,
             prompts={style: shown(seed_prompt(style, "{question}", JOINED if style == "minigptv2" else LETTERED, 0,
                                               random.Random(0))) for style in EVAL_STYLES},
             reference="LLaVA `convert_seed_for_submission.py` (the letter, exactly)")
