"""GQA test-dev balanced: GQA's `testdev_balanced_questions.json` (`{question_id: {question, imageId, answer,
isBalanced, types, ...}}`, LLaVA's kit keeps it in `eval/gqa/data/`) or the list LAVIS and MiniGPT-v2 convert it
to (`[{image, question, question_id, answer}]`).

The questions are GQA's own, the ones `eval.py` scores (the balanced ones); LLaVA's
`llava_gqa_testdev_balanced.jsonl` asks the same questions as `{question}\\nAnswer the question using a single
word or phrase.`, which is how the llava15 style asks them here. Scored as LLaVA's `convert_gqa_for_eval.py`
(`text.rstrip('.').lower()`) and `eval.py --tier testdev_balanced`: exact match with the answer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlit.data.prompting import benchmarks as prompts
from vlit.data.reading.fields import first_existing
from vlit.errors import VlitError
from vlit.evaluation.samples import expect, field_of, read_json
from vlit.evaluation.suites.base import Suite
from vlit.evaluation.suites.vqa_family import question_text, styled, vqa_sample

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec
    from vlit.evaluation.samples import EvalSample

QUESTION_FILES = ("testdev_balanced_questions.json", "data/testdev_balanced_questions.json",
                  "testdev_balanced_questions*.json", "data/testdev_balanced_questions*.json")
IMAGE_FOLDERS = ("data/images", "images")


def _official(data: dict[str, Any], path: Path) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(question id, question, image, answer, meta) of the balanced questions of GQA's dict."""
    out = []
    for qid, entry in data.items():
        where = f"{path}[{qid}]"
        if not field_of(entry, "isBalanced", bool, where):
            continue  # eval.py scores the balanced questions only
        meta: dict[str, Any] = {}
        types = entry.get("types")
        if isinstance(types, dict) and isinstance(types.get("structural"), str):
            meta["structural"] = types["structural"]  # eval.py: "query" is open, the rest binary
        image = f"{field_of(entry, 'imageId', str, where)}.jpg"
        out.append((qid, field_of(entry, "question", str, where), image, field_of(entry, "answer", str, where),
                    meta))
    return out


def _listed(data: list[Any], path: Path) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """The same from LAVIS / MiniGPT-v2's list."""
    out = []
    for i, entry in enumerate(data):
        where = f"{path}[{i}]"
        qid = str(field_of(entry, "question_id", (str, int), where))
        out.append((qid, field_of(entry, "question", str, where), field_of(entry, "image", str, where),
                    field_of(entry, "answer", str, where), {}))
    return out


def read_gqa(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    path = Path(bench.path)
    folder = path if path.is_dir() else path.parent
    if bench.annotations:
        truth: Path | None = Path(bench.annotations)
    elif path.is_file() and path.suffix == ".json":
        truth = path
    else:  # LLaVA's folder or its question file: GQA's questions are in its data/ folder
        truth = first_existing(folder, QUESTION_FILES)
    if truth is None:
        raise VlitError(f"{path}: no GQA questions file ({' or '.join(QUESTION_FILES[:2])}; LLaVA's kit wants "
                        "GQA's testdev_balanced_questions.json in eval/gqa/data/)")
    data = read_json(truth)
    rows = _official(data, truth) if isinstance(data, dict) else _listed(expect(data, list, str(truth)), truth)
    if not rows:
        raise VlitError(f"{truth}: no balanced question")
    root = bench.image_root or first_existing(folder, IMAGE_FOLDERS)
    samples = []
    for qid, question, image, answer, meta in rows:
        text = question_text(prompts.VQA, style, render, qid, seed, question=question)
        samples.append(vqa_sample(qid, text, image, root, [answer], {"question_id": qid, **meta}))
    return samples


GQA = Suite(read=read_gqa, metric="gqa", files="LLaVA's eval/gqa folder (data/testdev_balanced_questions.json) "
            "or GQA's questions file", max_new_tokens=16,
            published={"LLaVA-1.5-7B": 62.0, "InstructBLIP-Vicuna-7B": 49.2}, prompts=styled(prompts.VQA),
            reference="GQA `eval.py` on LLaVA `convert_gqa_for_eval.py`'s answers")
