"""MME (LLaVA's `eval/MME`): LLaVA's `llava_mme.jsonl` (question_id `<subtask>/<image>`, two questions per
image) with MME's ground truth, from MME's release (`MME_Benchmark_release_version/<subtask>/[questions_answers_YN/]
<image stem>.txt`, lines `question<TAB>answer`) or its eval tool's `eval_tool/Your_Results/<subtask>.txt` (lines
`image<TAB>question<TAB>answer`). Without LLaVA's file the questions come from the ground truth, in its order.

Paired as LLaVA's `convert_answer_to_mme.py` pairs them: the prompt without LLaVA's short-answer line, plus
MME's ` Please answer yes or no.` (two spaces where MME's file has two) is the question MME's file answers.
Scored as `eval_tool/calculation.py` (`vqa_scores.mme_metrics`); the two questions of an image must follow each
other, as `calculation.py` reads them in pairs."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from vlit.data.prompting import benchmarks as prompts
from vlit.data.prompting.styles import SHORT_ANSWER
from vlit.data.reading.fields import first_existing
from vlit.errors import VlitError
from vlit.evaluation.suites.base import Suite
from vlit.evaluation.suites.vqa_family import llava_rows, question_text, styled, vqa_sample
from vlit.evaluation.vqa_scores import MME_COGNITION, MME_PERCEPTION

if TYPE_CHECKING:
    from vlit.config.model import StyleName
    from vlit.data.loading.transforms import ImageSpec
    from vlit.evaluation.samples import EvalSample

SUBTASKS = MME_PERCEPTION + MME_COGNITION
RELEASE = "MME_Benchmark_release_version"
IMAGE_SUFFIXES = (".jpg", ".png", ".jpeg")

Truth = dict[tuple[str, str, str], str]
"""(subtask, `<image stem>.txt`, MME's question) -> "yes"/"no", keyed as `convert_answer_to_mme.py` keys it."""
Listed = list[tuple[str, str, str, str]]
"""(subtask, image, MME's question, answer) in MME's order."""


def _answer(value: str, where: str) -> str:
    answer = value.strip().lower()
    if answer not in ("yes", "no"):
        raise VlitError(f"{where}: answer {value!r} is not yes or no (calculation.py accepts nothing else)")
    return answer


def _fields(line: str, count: int, where: str) -> list[str]:
    fields = line.strip().split("\t")
    if len(fields) != count:
        raise VlitError(f"{where}: expected {count} tab-separated fields, got {len(fields)}")
    return fields


def _from_release(root: Path) -> Listed:
    """`convert_answer_to_mme.get_gt`'s walk: a subtask folder holds its `.txt` files beside the images, or in
    `questions_answers_YN/` beside `images/`."""
    out = []
    for subtask in SUBTASKS:
        folder = root / subtask
        if not folder.is_dir():
            continue
        images = folder / "images" if (folder / "images").is_dir() else folder
        qa = folder / "questions_answers_YN" if images != folder else folder
        names = {p.stem: p.name for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
        for txt in sorted(qa.glob("*.txt")):
            image = names.get(txt.stem, f"{txt.stem}.jpg")
            image = image if images == folder else f"images/{image}"
            for number, line in enumerate(txt.read_text(encoding="utf-8").splitlines(), start=1):
                if line.strip():
                    question, answer = _fields(line, 2, f"{txt}:{number}")
                    out.append((subtask, image, question, _answer(answer, f"{txt}:{number}")))
    return out


def _from_results(folder: Path) -> Listed:
    """The eval tool's `Your_Results/<subtask>.txt` files."""
    out = []
    for subtask in SUBTASKS:
        txt = folder / f"{subtask}.txt"
        if txt.is_file():
            for number, line in enumerate(txt.read_text(encoding="utf-8").splitlines(), start=1):
                if line.strip():
                    image, question, answer = _fields(line, 3, f"{txt}:{number}")
                    out.append((subtask, image, question, _answer(answer, f"{txt}:{number}")))
    return out


def _truth(path: Path, annotations: str | None) -> tuple[Listed, Path]:
    """The ground truth: `annotations`, else MME's release beside LLaVA's file, else the eval tool's files."""
    folder = path if path.is_dir() else path.parent
    candidates = [Path(annotations)] if annotations else [folder / RELEASE, folder / "eval_tool" / "Your_Results",
                                                           folder]
    for source in candidates:
        if any((source / t).is_dir() for t in SUBTASKS):
            return _from_release(source), source
        if any((source / f"{t}.txt").is_file() for t in SUBTASKS):
            return _from_results(source), source
    raise VlitError(f"{candidates[0]}: no MME ground truth ({RELEASE}/<subtask>/ or eval_tool/Your_Results/"
                    "<subtask>.txt)")


def _key(subtask: str, image: str, question: str) -> tuple[str, str, str]:
    return subtask, image.split("/")[-1].split(".")[0] + ".txt", question


def _lookup(truth: Truth, subtask: str, image: str, text: str, where: str) -> tuple[str, str]:
    """(MME's question, answer) for LLaVA's prompt, found as `convert_answer_to_mme.py` finds it."""
    prompt = text.replace(SHORT_ANSWER, "").strip() if SHORT_ANSWER in text else text
    if prompts.MME_YES_NO not in prompt:
        prompt = f"{prompt} {prompts.MME_YES_NO}"
        if _key(subtask, image, prompt) not in truth:
            prompt = prompt.replace(f" {prompts.MME_YES_NO}", f"  {prompts.MME_YES_NO}")
    if _key(subtask, image, prompt) not in truth:
        raise VlitError(f"{where}: MME's files have no question {prompt!r} for {subtask}/{image}")
    return prompt, truth[_key(subtask, image, prompt)]


def _check_pairs(samples: list[EvalSample], source: Path) -> None:
    """calculation.py reads each subtask's answers two by two: both must be about one image."""
    by_task: dict[str, list[EvalSample]] = defaultdict(list)
    for sample in samples:
        by_task[sample.meta["category"]].append(sample)
    for task, members in by_task.items():
        for i in range(0, len(members), 2):
            pair = members[i:i + 2]
            if len(pair) != 2 or pair[0].meta["question_id"] != pair[1].meta["question_id"]:
                raise VlitError(f"{source}: {task} question {i + 1} ({pair[0].meta['question_id']}) is not followed "
                                "by the other question of its image (calculation.py scores them in pairs)")


Row = tuple[str, str, str, str | None, str, str]
"""(question_id `<subtask>/<image>`, subtask, image path under MME's release, LLaVA's prompt or None, MME's
question, answer)."""


def _llava_questions(questions: Path, listed: Listed) -> list[Row]:
    truth = {_key(t, i, q): a for t, i, q, a in listed}
    rows = []
    for where, text, image, meta in llava_rows(questions):
        qid = str(meta["question_id"])
        subtask = qid.split("/")[0]
        if subtask not in SUBTASKS:
            raise VlitError(f"{where}.question_id: {subtask!r} is not one of MME's 14 subtasks")
        rows.append((qid, subtask, image or qid, text, *_lookup(truth, subtask, qid.split("/")[-1], text, where)))
    return rows


def read_mme(bench, style, render: StyleName, seed: int, frame: ImageSpec | None) -> list[EvalSample]:
    path = Path(bench.path)
    listed, source = _truth(path, bench.annotations)
    folder = path if path.is_dir() else path.parent
    questions = path if path.suffix == ".jsonl" else first_existing(folder, ("llava_mme.jsonl",))
    if questions is not None:
        rows = _llava_questions(questions, listed)
    else:
        rows = [(f"{t}/{i.split('/')[-1]}", t, f"{t}/{i}", None, q, a) for t, i, q, a in listed]
    root = bench.image_root or first_existing(folder, (RELEASE,))
    samples, seen = [], defaultdict(int)
    for qid, subtask, image, text, mme_question, answer in rows:
        sample_id = f"{qid}#{seen[qid]}"  # LLaVA's question_id names the image: two questions share it
        seen[qid] += 1
        bare = mme_question.replace(prompts.MME_YES_NO, "").strip()
        prompt = question_text(prompts.MME, style, render, sample_id, seed, text, question=bare,
                               mme_question=mme_question)
        samples.append(vqa_sample(sample_id, prompt, image, root, [answer], {"question_id": qid, "category": subtask},
                                  task="yes_no"))
    _check_pairs(samples, questions or source)
    return samples


MME = Suite(read=read_mme, metric="mme", files="LLaVA's eval/MME folder (llava_mme.jsonl, "
            "MME_Benchmark_release_version/ or eval_tool/Your_Results/)", max_new_tokens=16,
            published={"LLaVA-1.5-7B": 1510.7},
            prompts=styled(prompts.MME, mme_question=f"{{question}} {prompts.MME_YES_NO}"),
            reference="MME `eval_tool/calculation.py` (answers paired by LLaVA `convert_answer_to_mme.py`)")
