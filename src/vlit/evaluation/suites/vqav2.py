"""VQAv2 and OK-VQA.

- VQA-format files (`v2_OpenEnded_mscoco_val2014_questions.json` + `v2_mscoco_val2014_annotations.json`; OK-VQA's
  `OpenEnded_mscoco_val2014_questions.json` + `mscoco_val2014_annotations.json`), read by `coco.load_vqav2` and
  scored by the VQA tool's rule (`vqa_tool_accuracy`: what the server and MiniGPT-v2's OK-VQA evaluation run).
- LLaVA's `eval/vqav2/llava_vqav2_mscoco_test-dev2015.jsonl`: test-dev, no ground truth (LLaVA-1.5's 78.5 is the
  EvalAI server's). Nothing is scored; the upload is written as LLaVA's `convert_vqav2_for_submission.py` writes
  it: `[{question_id, answer}]` with EvalAI's processor on every answer, over the whole test2015 split when
  `llava_vqav2_mscoco_test2015.jsonl` is beside (unasked questions answered "", as the server wants them all).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vlit.data.conversation import IMAGE_TOKEN, Conversation, Turn
from vlit.data.prompting import benchmarks as prompts
from vlit.data.reading.fields import first_existing
from vlit.data.reading.rows import read_rows
from vlit.errors import VlitError
from vlit.evaluation.normalize import evalai_answer
from vlit.evaluation.samples import field_of
from vlit.evaluation.suites.base import Suite
from vlit.evaluation.suites.vqa_family import llava_samples, question_text, styled, write_upload

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec
    from vlit.evaluation.samples import EvalSample

QUESTION_FILES = ("v2_OpenEnded_mscoco_*_questions.json", "OpenEnded_mscoco_*_questions*.json", "*questions*.json")
ANNOTATION_FILES = ("v2_mscoco_*_annotations.json", "mscoco_*_annotations*.json", "*annotations*.json")
LLAVA_FILES = ("llava_vqav2_mscoco_test-dev2015.jsonl", "llava_vqav2*.jsonl")
LLAVA_WHOLE_SPLIT = "llava_vqav2_mscoco_test2015.jsonl"
IMAGE_FOLDERS = ("val2014", "test2015")


def _official(questions: Path, annotations: Path, bench, style, render: StyleName, seed: int) -> list[EvalSample]:
    from vlit.evaluation.coco import load_vqav2

    root = bench.image_root or first_existing(questions.parent, IMAGE_FOLDERS)
    samples = load_vqav2(questions, annotations, root)
    for sample in samples:
        text = question_text(prompts.VQA, style, render, sample.id, seed, question=sample.meta["question"])
        sample.conversation = Conversation([Turn("user", f"{IMAGE_TOKEN}\n{text}")], sample.conversation.images,
                                           sample.id)
        sample.meta["question_id"] = int(sample.id)
    return samples


def _llava(path: Path, bench, style, render: StyleName, seed: int) -> list[EvalSample]:
    root = bench.image_root or first_existing(path.parent, ("test2015",))
    whole = path.parent / LLAVA_WHOLE_SPLIT
    upload = {"upload_split": str(whole)} if whole.is_file() and whole != path else {}
    return llava_samples(path, prompts.VQA, style, render, seed, root, lambda image: upload)


def _read(bench, style, render: StyleName, seed: int, what: str, llava: bool) -> list[EvalSample]:
    path = Path(bench.path)
    folder = path if path.is_dir() else path.parent
    if path.suffix == ".jsonl" and llava:
        return _llava(path, bench, style, render, seed)
    questions = path if path.suffix == ".json" else first_existing(folder, QUESTION_FILES)
    annotations = Path(bench.annotations) if bench.annotations else first_existing(folder, ANNOTATION_FILES)
    if questions is not None and annotations is not None:
        return _official(questions, annotations, bench, style, render, seed)
    found = first_existing(folder, LLAVA_FILES) if llava and path.is_dir() else None
    if found is not None:
        return _llava(found, bench, style, render, seed)
    raise VlitError(f"{path}: no {what} questions and annotations ({QUESTION_FILES[0]} / {ANNOTATION_FILES[0]}"
                    + (f", or LLaVA's {LLAVA_FILES[0]})" if llava else ")"))


def read_vqav2(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    return _read(bench, style, render, seed, "VQAv2", llava=True)


def read_okvqa(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    return _read(bench, style, render, seed, "OK-VQA", llava=False)


def vqav2_upload(samples: list[EvalSample], predictions: list[str], folder: Path) -> Path:
    """`convert_vqav2_for_submission.py`'s file (also the results file the VQA tool's `loadRes` reads)."""
    answers = {int(s.meta["question_id"]): evalai_answer(p) for s, p in zip(samples, predictions, strict=True)}
    whole = samples[0].meta.get("upload_split") if samples else None
    ids = list(answers)
    if whole is not None:
        ids = [int(field_of(row, "question_id", (int, str), where)) for where, row in read_rows(whole)]
    return write_upload([{"question_id": q, "answer": answers.get(q, "")} for q in ids], folder,
                        "vqav2.upload.json")


VQAV2 = Suite(read=read_vqav2, metric="vqa_tool", files="LLaVA's eval/vqav2 folder "
              "(llava_vqav2_mscoco_test-dev2015.jsonl) or VQAv2's questions + annotations", max_new_tokens=16,
              submission=vqav2_upload, published={"LLaVA-1.5-7B": 78.5}, prompts=styled(prompts.VQA),
              reference="VQA tool `vqaEval.py`; test-dev: EvalAI server on LLaVA `convert_vqav2_for_submission.py`")
OKVQA = Suite(read=read_okvqa, metric="vqa_tool", files="OK-VQA's questions + annotations (VQA format)",
              max_new_tokens=16, prompts=styled(prompts.VQA), reference="VQA tool `vqaEval.py`")
