"""The papers' own evaluation prompts, per prompt style, where they differ from how a style renders a training
record (`vlit.data.prompting.styles`): the VQA family (MME, GQA, TextVQA, VizWiz, VQAv2, OK-VQA), the
multiple-choice and classification benchmarks (ScienceQA, MMBench, SEED-Bench, IconQA, VSR, HatefulMemes) and
captioning (Flickr30K, NoCaps). Each returns the user text without the `<image>` marker (the benchmark's reader
adds it, and the chat template wraps the turn).

Where a paper's code writes a benchmark's prompt, its text is here verbatim, with its source:

- LLaVA-1.5: the text of LLaVA's question files (`playground/data/eval/`), which carry the prompt: the question,
  extra lines for some benchmarks (VizWiz's unanswerable line, TextVQA's OCR tokens), then `Answer the question
  using a single word or phrase.`; for multiple choice (`llava/eval/model_vqa_science.py`,
  `model_vqa_mmbench.py`, `llava-seed-bench.jsonl`) the question, its options as `A. ...` lines, then `Answer
  with the option's letter from the given choices directly.` (MMBench-CN: `请直接回答选项字母。`). ScienceQA's
  CQM-A question (`llava_test_CQM-A.json`) starts with `Context: <hint>` only when the problem has a hint;
  MMBench's starts with the hint's own line.
- MiniGPT-v2 (`eval_scripts` datasets, `minigpt4/datasets/datasets/vqa_datasets.py`,
  `eval_scripts/eval_sciencevqa.py`): `[vqa] Based on the image, respond to this question with a short answer:
  {question}` (OK-VQA, GQA, IconQA), its own VizWiz and TextVQA wording, `[vqa] Based on the image, is this
  statement true or false? {s}` (VSR), `[vqa] This is an image with: "{text}" written on it. Is it hateful?
  Answer:` (HatefulMemes), `[vqa] Question: {q} Answer:` (ScienceQA).
- InstructBLIP: on the VQA family a template drawn per question from InstructBLIP's VQA templates (the styles
  module, seeded per sample so a benchmark's prompts do not change between runs); TextVQA with OCR tokens as
  LLaVA's `eval_textvqa.py` reads InstructBLIP's prompt back (`OCR tokens: ... Question: ... Short answer:`). On
  SEED-Bench (SEED-Bench's `model/instruct_blip_interface.py`): `Question: {q}\\nAnswer:`, the choices ranked.
  On HatefulMemes: MiniGPT-v2's question without its task tag, the form LAVIS users ask InstructBLIP with
  (answers ranked between yes and no).

Where no paper's code asks a benchmark in a style (LLaVA-1.5 never ran IconQA, VSR or HatefulMemes; MiniGPT-v2
never ran MMBench or SEED; InstructBLIP's evaluation prompts for ScienceQA, MMBench, IconQA and VSR are not in
its released code), the question is asked as that style asks any record of its kind: InstructBLIP's templates
drawn with the caller's rng, LLaVA-1.5's response-format prompts, MiniGPT-v2's tagged instructions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from vlit.config.model import StyleName
from vlit.data.prompting.styles import LETTER_ANSWER, SHORT_ANSWER, lettered, render
from vlit.data.prompting.templates import TaskRecord

# ---- the texts --------------------------------------------------------------------------------------------

UNANSWERABLE = "When the provided information is insufficient, respond with 'Unanswerable'."
"""LLaVA-1.5's VizWiz line, between the question and the short-answer line."""
OCR_LINE = "Reference OCR token: "
"""LLaVA-1.5's TextVQA line, before the OCR tokens (`llava_textvqa_val_v051_ocr.jsonl`)."""
MME_YES_NO = "Please answer yes or no."
"""MME's own instruction, the end of every MME question (`question<TAB>answer` in its files)."""
LETTER_ANSWER_CN = "请直接回答选项字母。"
"""LLaVA's MMBench-CN instruction (`model_vqa_mmbench.py --lang cn`)."""

MINIGPTV2_VQA = "[vqa] Based on the image, respond to this question with a short answer: {question}"
"""MiniGPT-v2's short-answer question (`vqa_datasets.py`): OK-VQA, GQA, IconQA."""
MINIGPTV2_SCIENCEQA = "[vqa] Question: {question} Answer:"
VSR_STATEMENT = "Based on the image, is this statement true or false? {statement}"
"""MiniGPT-v2's VSR question, untagged (it adds `[vqa] `)."""
HATEFUL_QUESTION = 'This is an image with: "{text}" written on it. Is it hateful? Answer:'
"""MiniGPT-v2's HatefulMemes question, untagged (it adds `[vqa] `)."""
SEED_INSTRUCTBLIP = "Question: {question}\nAnswer:"

VSR_LABELS = ("true", "false")
"""VSR's answers as MiniGPT-v2 asks for them (`label` 1 -> true)."""
HATEFUL_LABELS = ("yes", "no")
"""HatefulMemes' answers (`label` 1 -> yes), the two candidates ranked for its ROC-AUC."""

CAPTION_PROMPTS: dict[str, str] = {
    "instructblip": "A short image description:",
    "llava15": "Provide a one-sentence caption for the provided image.",
    "minigptv2": "[caption] please describe this image?",
}
"""The caption request of each style's paper evaluation: InstructBLIP's held-out captioning prompt, LLaVA-1.5's
caption instruction (as lmms-eval asks it), MiniGPT-4's `EvalCaptionData`. Not the training styles' random
draws: a benchmark's prompt does not change per image."""


# ---- the VQA family ---------------------------------------------------------------------------------------

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

    def read_back(self, text: str) -> str:
        """The bare question of a prompt LLaVA's file holds: `text` without the fixed lines of `llava15`
        (wherever they stand)."""
        fixed = {line for line in self.llava15.split("\n") if "{" not in line}
        return "\n".join(line for line in text.split("\n") if line not in fixed).strip()


VQA = EvalPrompt(llava15=f"{{question}}\n{SHORT_ANSWER}", minigptv2=MINIGPTV2_VQA)
"""VQAv2, OK-VQA, GQA (LLaVA's `llava_vqav2_mscoco_test-dev2015.jsonl`, `llava_gqa_testdev_balanced.jsonl`)."""

VIZWIZ = EvalPrompt(
    llava15=f"{{question}}\n{UNANSWERABLE}\n{SHORT_ANSWER}",
    minigptv2="[vqa] The question is '{question}' Based on the image, answer the question with a single word or "
              "phrase. and reply 'unanswerable' when the provided information is insufficient")
"""LLaVA's `vizwiz/llava_test.jsonl`; MiniGPT-v2's `VizWizEvalData` (its wording, grammar included)."""

TEXTVQA_OCR = EvalPrompt(
    llava15=f"{{question}}\n{OCR_LINE}{{ocr}}\n{SHORT_ANSWER}",
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


# ---- multiple choice and classification -------------------------------------------------------------------

def _in_context(question: str, hint: str) -> str:
    return f"Context: {hint}\n{question}" if hint else question


def cqm_question(question: str, hint: str, options: Sequence[str]) -> str:
    """ScienceQA's question as LLaVA's `llava_test_CQM-A.json` holds it: `Context: <hint>` first when there is a
    hint, the question, the lettered options."""
    return lettered(_in_context(question, hint), options)


def _choice(style: StyleName, question: str, options: Sequence[str], answer_index: int, rng: random.Random) -> str:
    record = TaskRecord("multiple_choice", question=question, options=tuple(options), answer_index=answer_index)
    return render(record, style, rng, image=False)[0].content


def _short(style: StyleName, question: str, answer: str, rng: random.Random) -> str:
    record = TaskRecord("classification", question=question, answers=(answer,))
    return render(record, style, rng, image=False)[0].content


def scienceqa_prompt(style: StyleName, question: str, hint: str, options: Sequence[str], answer_index: int,
                     rng: random.Random, cqm: str | None = None) -> str:
    """ScienceQA: LLaVA-1.5's CQM-A question (`cqm`, as the kit's file holds it, else built) and the letter
    instruction (`model_vqa_science.py --single-pred-prompt`); MiniGPT-v2's question-only prompt; InstructBLIP's
    multiple-choice templates over the context and question."""
    if style == "llava15":
        return f"{cqm if cqm is not None else cqm_question(question, hint, options)}\n{LETTER_ANSWER}"
    if style == "minigptv2":
        return MINIGPTV2_SCIENCEQA.format(question=question)
    return _choice(style, _in_context(question, hint), options, answer_index, rng)


def mmbench_prompt(style: StyleName, question: str, hint: str | None, options: Sequence[str], answer_index: int,
                   rng: random.Random, chinese: bool = False) -> str:
    """MMBench: LLaVA-1.5's hint line, question, lettered options and the letter instruction (Chinese for
    MMBench-CN); other styles ask the hint and question as a multiple-choice record."""
    asked = f"{hint}\n{question}" if hint is not None else question
    if style == "llava15":
        return f"{lettered(asked, options)}\n{LETTER_ANSWER_CN if chinese else LETTER_ANSWER}"
    return _choice(style, asked, options, answer_index, rng)


def seed_prompt(style: StyleName, question: str, options: Sequence[str], answer_index: int,
                rng: random.Random) -> str:
    """SEED-Bench: LLaVA-1.5's lettered question (as `llava-seed-bench.jsonl` holds it); SEED-Bench's own
    InstructBLIP prompt (its choices ranked); MiniGPT-v2 as it asks any multiple choice."""
    if style == "llava15":
        return f"{lettered(question, options)}\n{LETTER_ANSWER}"
    if style == "instructblip":
        return SEED_INSTRUCTBLIP.format(question=question)
    return _choice(style, question, options, answer_index, rng)


def iconqa_prompt(style: StyleName, question: str, options: Sequence[str], answer_index: int,
                  rng: random.Random) -> str:
    """IconQA (choose_txt, its choices ranked): MiniGPT-v2's short-answer prompt (`eval_vqa.py`, candidates
    ranked by `multi_select`); LLaVA-1.5's lettered question; InstructBLIP's multiple-choice templates."""
    if style == "minigptv2":
        return MINIGPTV2_VQA.format(question=question)
    if style == "llava15":
        return f"{lettered(question, options)}\n{LETTER_ANSWER}"
    return _choice(style, question, options, answer_index, rng)


def vsr_prompt(style: StyleName, caption: str, label: str, rng: random.Random) -> str:
    """VSR: MiniGPT-v2's true-or-false question on the caption; InstructBLIP is asked it untagged (its answer
    ranked between true and false); LLaVA-1.5 adds its short-answer instruction."""
    statement = VSR_STATEMENT.format(statement=caption)
    if style == "minigptv2":
        return f"[vqa] {statement}"
    if style == "instructblip":
        return statement
    return _short(style, statement, label, rng)


def hateful_memes_prompt(style: StyleName, text: str, label: str, rng: random.Random) -> str:
    """HatefulMemes: the meme's text in MiniGPT-v2's question (tagged `[vqa]` for MiniGPT-v2, as is for
    InstructBLIP); LLaVA-1.5 asks it with its short-answer instruction instead of the trailing `Answer:`."""
    question = HATEFUL_QUESTION.format(text=text)
    if style == "minigptv2":
        return f"[vqa] {question}"
    if style == "instructblip":
        return question
    return _short(style, question.removesuffix(" Answer:"), label, rng)
