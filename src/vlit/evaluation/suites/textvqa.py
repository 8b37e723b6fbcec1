"""TextVQA val (LLaVA's `eval/textvqa`): LLaVA's `llava_textvqa_val_v051_ocr.jsonl` (its `question_id` is the
image id, so it repeats; the text carries the OCR tokens) and TextVQA's `TextVQA_0.5.1_val.json` (`data`: image_id,
question, 10 answers). Without LLaVA's file the questions come from TextVQA's file, asked without OCR tokens.

Paired as LLaVA's `eval_textvqa.py` pairs them: (image id, the question read back from the prompt, lower-cased)
-> the annotation (the last one of a repeated pair wins, as its dict does). Scored by `TextVQAAccuracyEvaluator`:
EvalAI's answer processor on both sides, leave-one-out VQA accuracy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlit.data.prompting import benchmarks as prompts
from vlit.data.reading.fields import first_existing
from vlit.errors import VlitError
from vlit.evaluation.samples import expect, field_of, read_json
from vlit.evaluation.suites.base import Suite
from vlit.evaluation.suites.vqa_family import llava_rows, question_text, styled, vqa_sample, warn_unanswered

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec
    from vlit.evaluation.samples import EvalSample

LLAVA_FILES = ("llava_textvqa_val_v051_ocr.jsonl", "llava_textvqa*.jsonl")
ANNOTATION_FILES = ("TextVQA_0.5.1_val.json", "TextVQA_0.5.1_val*.json")
IMAGE_FOLDERS = ("train_images", "train_val_images/train_images")
_BLIP_PROMPT = re.compile(r"OCR tokens: (.*?)\. Question: (.*?) Short answer:", re.DOTALL)


def read_prompt(text: str, where: str) -> tuple[str, str | None]:
    """(question, OCR tokens or None) from a prompt, by `eval_textvqa.py`'s `prompt_processor` rules: InstructBLIP's
    `OCR tokens: .. Question: .. Short answer:`, LLaVA's three lines with a `Reference OCR token: ` line (first
    or second), or two lines (question, instruction). Anything else fails there, and here."""
    lines = text.split("\n")
    if text.startswith("OCR tokens: "):
        m = _BLIP_PROMPT.search(text)
        if m is None:
            raise VlitError(f"{where}.text: no 'Question: .. Short answer:' after the OCR tokens")
        return m.group(2), m.group(1)
    if prompts.OCR_LINE in text and len(lines) == 3:
        ocr, question = (lines[0], lines[1]) if text.startswith(prompts.OCR_LINE.strip()) else (lines[1], lines[0])
        return question, ocr.removeprefix(prompts.OCR_LINE)
    if len(lines) == 2:
        return lines[0], None
    raise VlitError(f"{where}.text: not a TextVQA prompt eval_textvqa.py reads (question, optional "
                    f"'{prompts.OCR_LINE}' line, instruction)")


def _annotations(path: Path) -> list[tuple[str, dict[str, Any]]]:
    entries = field_of(read_json(path), "data", list, str(path))
    out = []
    for i, entry in enumerate(entries):
        where = f"{path}: data[{i}]"
        field_of(entry, "image_id", str, where)
        field_of(entry, "question", str, where)
        answers = field_of(entry, "answers", list, where)
        if not answers:
            raise VlitError(f"{where}.answers: empty")
        for j, answer in enumerate(answers):
            expect(answer, str, f"{where}.answers[{j}]")
        out.append((where, entry))
    return out


def _ask(ocr: str | None, style, render: StyleName, sample_id: str, seed: int, question: str,
         file_text: str | None = None) -> str:
    if ocr is None:
        return question_text(prompts.TEXTVQA, style, render, sample_id, seed, file_text, question=question)
    return question_text(prompts.TEXTVQA_OCR, style, render, sample_id, seed, file_text, question=question, ocr=ocr)


def read_textvqa(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    path = Path(bench.path)
    folder = path if path.is_dir() else path.parent
    questions = path if path.suffix == ".jsonl" else first_existing(folder, LLAVA_FILES)
    truth = (Path(bench.annotations) if bench.annotations else path if path.suffix == ".json"
             else first_existing(folder, ANNOTATION_FILES))
    if truth is None:
        raise VlitError(f"{path}: no TextVQA annotations ({' or '.join(ANNOTATION_FILES)})")
    annotations = _annotations(truth)
    root = bench.image_root or first_existing(folder, IMAGE_FOLDERS)
    if questions is None:  # TextVQA's own file: no OCR tokens on disk
        samples = []
        for where, entry in annotations:
            sample_id = str(entry.get("question_id", where))
            text = _ask(None, style, render, sample_id, seed, entry["question"])
            samples.append(vqa_sample(sample_id, text, f"{entry['image_id']}.jpg", root, list(entry["answers"]),
                                      {"question_id": entry["image_id"]}))
        return samples
    by_key = {(e["image_id"], e["question"].lower()): e for _, e in annotations}
    samples, unmatched, seen = [], [], {}
    for where, text, image, meta in llava_rows(questions):
        question, ocr = read_prompt(text, where)
        qid = str(meta["question_id"])
        entry = by_key.get((qid, question.lower()))
        k = seen[qid] = seen.get(qid, -1) + 1
        # The annotation's question_id is unique where LLaVA's (the image id) repeats.
        sample_id = str(entry["question_id"]) if entry and "question_id" in entry else f"{qid}#{k}"
        if entry is None:
            unmatched.append(where)
        prompt = _ask(ocr, style, render, sample_id, seed, question, file_text=text)
        samples.append(vqa_sample(sample_id, prompt, image, root, list(entry["answers"]) if entry else [], meta))
    warn_unanswered(unmatched, len(samples), truth)
    return samples


TEXTVQA = Suite(read=read_textvqa, metric="textvqa", files="LLaVA's eval/textvqa folder "
                "(llava_textvqa_val_v051_ocr.jsonl, TextVQA_0.5.1_val.json)",
                published={"LLaVA-1.5-7B": 58.2, "InstructBLIP-Vicuna-7B": 50.1},
                prompts={style: f"{ocr}; without OCR tokens: {plain}" for (style, ocr), plain
                         in zip(styled(prompts.TEXTVQA_OCR).items(), styled(prompts.TEXTVQA).values(), strict=True)},
                reference="LLaVA `eval_textvqa.py` (`TextVQAAccuracyEvaluator`)")
