"""What the VQA-family suites (GQA, TextVQA, VizWiz, VQAv2, OK-VQA, MME) share: LLaVA's question rows read with
their repeats, a question asked in a style, a sample built from it, the upload file an evaluation server takes.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vlit.config.data import PromptStyle
from vlit.config.model import StyleName
from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.data.prompting.benchmarks import EvalPrompt
from vlit.data.reading.llava import read_questions
from vlit.data.reading.rows import iter_raw_rows
from vlit.errors import VlitError
from vlit.evaluation.samples import EvalSample, EvalTask, image_path
from vlit.evaluation.suites.base import EVAL_STYLES, drawn, shown

log = logging.getLogger(__name__)


def llava_rows(path: Path) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """LLaVA's question file as (where, text, image, meta) per row, in file order. Unlike
    `load_llava_questions` a question id may repeat (TextVQA's is the image id, MME asks two questions per
    image); meta keeps `question_id` and `category`."""
    raws = [raw for raw in iter_raw_rows(path) if raw.error is None]
    out = []
    # read_questions checks every row (naming file:line and field); the raw rows give the `where`.
    for question, raw in zip(read_questions(path), raws, strict=True):
        images = question.images
        text = question.turns[0].content.removeprefix(f"{IMAGE_TOKEN}\n")
        out.append((raw.where, text, str(images[0]) if images else None, dict(question.meta)))
    return out


def question_text(prompt: EvalPrompt, style: PromptStyle, render: StyleName, sample_id: str, seed: int,
                  file_text: str | None = None, **fields: str) -> str:
    """The question in `style`. `file_text` is the prompt LLaVA's file holds for it: asked as is in LLaVA's
    style (and `as_is`), as LLaVA asked it. InstructBLIP's template is drawn by an rng seeded by (seed, id), as
    `samples.question_conversation` does."""
    if file_text is not None and style in ("as_is", "llava15"):
        return file_text
    return prompt.ask(render, random.Random(f"{seed}:{sample_id}"), **fields)


def styled(prompt: EvalPrompt, **fields: str) -> dict[str, str]:
    """How `prompt` asks in each style, for `Suite.prompts`: its text with `{question}` (`{ocr}`) left as
    placeholders, `fields` filling any other (MME's question), or the InstructBLIP templates it draws from."""
    values = {"question": "{question}", "ocr": "{ocr}", **fields}
    return {style: drawn("vqa") if style == "instructblip" and prompt.instructblip is None
            else shown(prompt.ask(style, random.Random(0), **values)) for style in EVAL_STYLES}


def vqa_sample(sample_id: str, text: str, image: str | None, image_root: str | Path | None, references: list[str],
               meta: dict[str, Any], task: EvalTask = "vqa") -> EvalSample:
    """One question (the image marker first, as LLaVA writes it) with its ground truth (empty: none on disk)."""
    images = [] if image is None else [image_path(image_root, image)]
    content = f"{IMAGE_TOKEN}\n{text}" if images else text
    return EvalSample(sample_id, Conversation([Turn("user", content)], images, sample_id), task, references, [],
                      meta)


def llava_samples(path: Path, prompt: EvalPrompt, style: PromptStyle, render: StyleName, seed: int,
                  root: str | Path | None, meta: Callable[[str | None], dict[str, Any]]) -> list[EvalSample]:
    """LLaVA's question file of a split the evaluation server scores (no ground truth on disk): each row's
    question read back from its text (`EvalPrompt.read_back`) and asked in `style`; `meta(image)` joins the
    row's meta."""
    samples = []
    for _, text, image, row_meta in llava_rows(path):
        qid = str(row_meta["question_id"])
        asked = question_text(prompt, style, render, qid, seed, text, question=prompt.read_back(text))
        samples.append(vqa_sample(qid, asked, image, root, [], row_meta | meta(image)))
    return samples


def warn_unanswered(unmatched: list[str], total: int, truth: Path) -> None:
    """Questions `truth` has no answer for stay, unscored (so the k-th answer of a repeated question id still
    pairs with its k-th question); the reference scripts stop at the first. None answered: the wrong file."""
    if unmatched and len(unmatched) == total:
        raise VlitError(f"{truth}: answers none of the questions (first: {unmatched[0]})")
    if unmatched:
        log.warning("%s: no answer for %d of %d questions (first: %s); they are asked but not scored", truth,
                    len(unmatched), total, unmatched[0])


def write_upload(rows: list[dict[str, Any]], folder: Path, name: str) -> Path:
    """`rows` as the JSON array an evaluation server takes, `<folder>/<name>`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(rows, ensure_ascii=False))
    return path
