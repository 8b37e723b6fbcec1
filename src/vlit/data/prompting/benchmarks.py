"""The papers' own evaluation prompts for the multiple-choice and classification benchmarks (ScienceQA, MMBench,
SEED-Bench, IconQA, VSR, HatefulMemes), per prompt style. Each function returns the user text without the
`<image>` marker (the benchmark's reader adds it, and the chat template wraps the turn).

Where a paper's code writes a benchmark's prompt, its text is here verbatim, with its source:

- LLaVA-1.5 (`llava/eval/model_vqa_science.py`, `model_vqa_mmbench.py`, `llava-seed-bench.jsonl`): the
  question, its options as `A. ...` lines, then `Answer with the option's letter from the given choices
  directly.` (MMBench-CN: `请直接回答选项字母。`). ScienceQA's CQM-A question (`llava_test_CQM-A.json`) starts
  with `Context: <hint>` only when the problem has a hint; MMBench's starts with the hint's own line.
- MiniGPT-v2 (`minigpt4/datasets/datasets/vqa_datasets.py`, `eval_scripts/eval_sciencevqa.py`): `[vqa] Based on
  the image, respond to this question with a short answer: {q}` (IconQA), `[vqa] Based on the image, is this
  statement true or false? {s}` (VSR), `[vqa] This is an image with: "{text}" written on it. Is it hateful?
  Answer:` (HatefulMemes), `[vqa] Question: {q} Answer:` (ScienceQA).
- InstructBLIP on SEED-Bench (SEED-Bench's `model/instruct_blip_interface.py`): `Question: {q}\\nAnswer:`, the
  choices ranked. On HatefulMemes: MiniGPT-v2's question without its task tag, the form LAVIS users ask
  InstructBLIP with (answers ranked between yes and no).

Where no paper's code asks a benchmark in a style (LLaVA-1.5 never ran IconQA, VSR or HatefulMemes; MiniGPT-v2
never ran MMBench or SEED; InstructBLIP's evaluation prompts for ScienceQA, MMBench, IconQA and VSR are not in
its released code), the question is asked as that style asks any record of its kind
(`vlit.data.prompting.styles`): InstructBLIP's templates drawn with the caller's rng, LLaVA-1.5's
response-format prompts, MiniGPT-v2's tagged instructions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from vlit.config.model import StyleName
from vlit.data.prompting.styles import LETTER_ANSWER, LETTERS, render
from vlit.data.prompting.templates import TaskRecord

LETTER_ANSWER_CN = "请直接回答选项字母。"
"""LLaVA's MMBench-CN instruction (`model_vqa_mmbench.py --lang cn`)."""

MINIGPTV2_SHORT_ANSWER = "[vqa] Based on the image, respond to this question with a short answer: {question}"
MINIGPTV2_SCIENCEQA = "[vqa] Question: {question} Answer:"
MINIGPTV2_VSR = "[vqa] Based on the image, is this statement true or false? {statement}"
HATEFUL_QUESTION = 'This is an image with: "{text}" written on it. Is it hateful? Answer:'
"""MiniGPT-v2's HatefulMemes question, untagged (it adds `[vqa] `)."""
SEED_INSTRUCTBLIP = "Question: {question}\nAnswer:"
VSR_STATEMENT = "Based on the image, is this statement true or false? {statement}"
"""MiniGPT-v2's VSR question, untagged."""

VSR_LABELS = ("true", "false")
"""VSR's answers as MiniGPT-v2 asks for them (`label` 1 -> true)."""
HATEFUL_LABELS = ("yes", "no")
"""HatefulMemes' answers (`label` 1 -> yes), the two candidates ranked for its ROC-AUC."""


def lettered(question: str, options: Sequence[str]) -> str:
    """The question, then one `A. option` line per option (LLaVA's layout)."""
    return "\n".join([question, *(f"{LETTERS[i]}. {option}" for i, option in enumerate(options))])


def cqm_question(question: str, hint: str, options: Sequence[str]) -> str:
    """ScienceQA's question as LLaVA's `llava_test_CQM-A.json` holds it: `Context: <hint>` first when there is a
    hint, the question, the lettered options."""
    return lettered(f"Context: {hint}\n{question}" if hint else question, options)


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
    return _choice(style, f"Context: {hint}\n{question}" if hint else question, options, answer_index, rng)


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
        return MINIGPTV2_SHORT_ANSWER.format(question=question)
    if style == "llava15":
        return f"{lettered(question, options)}\n{LETTER_ANSWER}"
    return _choice(style, question, options, answer_index, rng)


def vsr_prompt(style: StyleName, caption: str, label: str, rng: random.Random) -> str:
    """VSR: MiniGPT-v2's true-or-false question on the caption; InstructBLIP is asked it untagged (its answer
    ranked between true and false); LLaVA-1.5 adds its short-answer instruction."""
    if style == "minigptv2":
        return MINIGPTV2_VSR.format(statement=caption)
    if style == "instructblip":
        return VSR_STATEMENT.format(statement=caption)
    return _short(style, VSR_STATEMENT.format(statement=caption), label, rng)


def hateful_memes_prompt(style: StyleName, text: str, label: str, rng: random.Random) -> str:
    """HatefulMemes: the meme's text in MiniGPT-v2's question (tagged `[vqa]` for MiniGPT-v2, as is for
    InstructBLIP); LLaVA-1.5 asks it with its short-answer instruction instead of the trailing `Answer:`."""
    if style == "minigptv2":
        return f"[vqa] {HATEFUL_QUESTION.format(text=text)}"
    if style == "instructblip":
        return HATEFUL_QUESTION.format(text=text)
    question = HATEFUL_QUESTION.format(text=text).removesuffix(" Answer:")
    return _short(style, question, label, rng)
