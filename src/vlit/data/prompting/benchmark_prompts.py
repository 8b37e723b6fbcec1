"""How the papers' own evaluation code asks the VQA-family benchmarks, per prompt style, where that differs from
how a style renders a training record (`vlit.data.prompting.styles`).

- `llava15`: the text of LLaVA's question files (`playground/data/eval/`), which carry the prompt: the question,
  extra lines for some benchmarks (VizWiz's unanswerable line, TextVQA's OCR tokens), then
  `Answer the question using a single word or phrase.`
- `minigptv2`: MiniGPT-v2's `eval_scripts` datasets (`minigpt4/datasets/datasets/vqa_datasets.py`): `[vqa] Based
  on the image, respond to this question with a short answer: {question}` for OK-VQA and GQA, its own VizWiz
  and TextVQA wording.
- `instructblip`: a VQA template drawn per question from InstructBLIP's templates (the styles module, seeded per
  sample so a benchmark's prompts do not change between runs); TextVQA with OCR tokens as LLaVA's
  `eval_textvqa.py` reads InstructBLIP's prompt back (`OCR tokens: ... Question: ... Short answer:`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from vlit.config.model import StyleName
from vlit.data.prompting.styles import SHORT_ANSWER, render
from vlit.data.prompting.templates import TaskRecord

UNANSWERABLE = "When the provided information is insufficient, respond with 'Unanswerable'."
"""LLaVA-1.5's VizWiz line, between the question and the short-answer line."""
MME_YES_NO = "Please answer yes or no."
"""MME's own instruction, the end of every MME question (`question<TAB>answer` in its files)."""
MINIGPTV2_VQA = "[vqa] Based on the image, respond to this question with a short answer: {question}"


@dataclass(frozen=True)
class EvalPrompt:
    """One benchmark's question as each paper's evaluation code writes it; `{question}` (and `{ocr}`) filled."""

    llava15: str
    minigptv2: str
    instructblip: str | None = None
    """None: a template drawn from InstructBLIP's VQA templates for each question."""

    def ask(self, style: StyleName, rng: random.Random, **fields: str) -> str:
        """The prompt text (no image marker) in `style`; `rng` draws InstructBLIP's template."""
        if style == "instructblip" and self.instructblip is None:
            # The answer is never rendered into the question turn; the record only needs one.
            record = TaskRecord("vqa", question=fields["question"], answers=("-",))
            return render(record, "instructblip", rng, image=False)[0].content
        return getattr(self, style).format(**fields)


VQA = EvalPrompt(llava15=f"{{question}}\n{SHORT_ANSWER}", minigptv2=MINIGPTV2_VQA)
"""VQAv2, OK-VQA, GQA (LLaVA's `llava_vqav2_mscoco_test-dev2015.jsonl`, `llava_gqa_testdev_balanced.jsonl`)."""

VIZWIZ = EvalPrompt(
    llava15=f"{{question}}\n{UNANSWERABLE}\n{SHORT_ANSWER}",
    minigptv2="[vqa] The question is '{question}' Based on the image, answer the question with a single word or "
              "phrase. and reply 'unanswerable' when the provided information is insufficient")
"""LLaVA's `vizwiz/llava_test.jsonl`; MiniGPT-v2's `VizWizEvalData` (its wording, grammar included)."""

TEXTVQA_OCR = EvalPrompt(
    llava15=f"{{question}}\nReference OCR token: {{ocr}}\n{SHORT_ANSWER}",
    minigptv2="OCR tokens: {ocr}. [vqa] Question: {question} Short answer:",
    instructblip="OCR tokens: {ocr}. Question: {question} Short answer:")
"""LLaVA's `llava_textvqa_val_v051_ocr.jsonl`; MiniGPT-v2's `eval_textvqa.py` with `use_ocr` (it also lower-cases
the question with BLIP's question processor; not done here)."""

TEXTVQA = EvalPrompt(llava15=f"{{question}}\n{SHORT_ANSWER}", minigptv2="[vqa] Question: {question} Short answer:")
"""TextVQA where a question has no OCR tokens (or they are not on disk)."""

MME = EvalPrompt(llava15=f"{{question}}\n{SHORT_ANSWER}", minigptv2="[vqa] {mme_question}",
                 instructblip="{mme_question}")
"""MME: `question` is MME's question without its yes/no instruction, `mme_question` the question as MME's files
write it. LLaVA swaps the instruction for its short-answer line (`llava_mme.jsonl`); the other styles ask MME's
own text, as MME's protocol does (MiniGPT-v2 tagged as its VQA task)."""
