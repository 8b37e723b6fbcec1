"""VizWiz: LLaVA's `eval/vizwiz/llava_test.jsonl` (the test split LLaVA-1.5 reports: no ground truth, the
EvalAI server scores it) or VizWiz's own `val.json` / `test.json` (`[{image, question, answers: [{answer,
answer_confidence}] x 10, answer_type, answerable}]`).

Where there is ground truth (val) it is scored as VizWiz's server scores LLaVA's upload (`vizwiz_accuracy`);
every run writes the upload LLaVA's `convert_vizwiz_for_submission.py` writes: `[{image, answer}]`, each answer
through EvalAI's processor. In a folder holding both, LLaVA's test file is taken (the paper's protocol); name
`val.json` as PATH to score val."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vlit.data.prompting import benchmarks as prompts
from vlit.data.reading.fields import first_existing
from vlit.data.reading.rows import read_rows
from vlit.errors import VlitError
from vlit.evaluation.normalize import evalai_answer
from vlit.evaluation.samples import field_of
from vlit.evaluation.suites.base import Suite
from vlit.evaluation.suites.vqa_family import llava_samples, question_text, styled, vqa_sample, write_upload

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec
    from vlit.evaluation.samples import EvalSample

FILES = ("llava_test.jsonl", "val.json", "Annotations/val.json", "test.json", "Annotations/test.json")


def _official(path: Path, style, render: StyleName, seed: int, root: Path | None) -> list[EvalSample]:
    """VizWiz's own file; a row's id is its index (LLaVA numbers the test questions the same way)."""
    samples = []
    for index, (where, row) in enumerate(read_rows(path)):
        image = field_of(row, "image", str, where)
        question = field_of(row, "question", str, where)
        references = []
        if "answers" in row:
            answers = field_of(row, "answers", list, where)
            references = [field_of(a, "answer", str, f"{where}.answers[{j}]") for j, a in enumerate(answers)]
            if not references:
                raise VlitError(f"{where}.answers: empty")
        meta = {"question_id": index, "image": image}
        if "answer_type" in row:
            meta["answer_type"] = field_of(row, "answer_type", str, where)
        text = question_text(prompts.VIZWIZ, style, render, str(index), seed, question=question)
        samples.append(vqa_sample(str(index), text, image, root, references, meta))
    return samples


def read_vizwiz(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    path = Path(bench.path)
    found = path if path.is_file() else first_existing(path, FILES)
    if found is None:
        raise VlitError(f"{path}: no VizWiz questions ({' or '.join(FILES)})")
    folder = found.parent
    if found.suffix == ".jsonl":
        root = bench.image_root or first_existing(folder, ("test",))
        return llava_samples(found, prompts.VIZWIZ, style, render, seed, root, lambda image: {"image": image})
    # The split's images sit in a folder named after it, beside Annotations/ (VizWiz's zips) or the file.
    split = found.stem
    root = bench.image_root or next((d for d in (folder / split, folder.parent / split) if d.is_dir()), None)
    return _official(found, style, render, seed, root)


def vizwiz_upload(samples: list[EvalSample], predictions: list[str], folder: Path) -> Path:
    """`convert_vizwiz_for_submission.py`'s file: `[{"image", "answer"}]` in question order."""
    rows = [{"image": s.meta["image"], "answer": evalai_answer(p)} for s, p in zip(samples, predictions, strict=True)]
    return write_upload(rows, folder, "vizwiz.upload.json")


VIZWIZ = Suite(read=read_vizwiz, metric="vizwiz", files="LLaVA's eval/vizwiz folder (llava_test.jsonl) or "
               "VizWiz's val.json", submission=vizwiz_upload,
               published={"LLaVA-1.5-7B": 50.0, "InstructBLIP-Vicuna-7B": 34.5}, prompts=styled(prompts.VIZWIZ),
               reference="VizWiz `VQAEval` (EvalAI server) on LLaVA `convert_vizwiz_for_submission.py`'s answers")
