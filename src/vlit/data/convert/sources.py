"""The one table of the training sets `vlit data convert` reads (name -> reader, the files it takes, the
InstructBLIP task category its rows carry, who trains on it), and of the sets each paper holds out.

A held-out set is only ever evaluated zero-shot: the converter refuses to write it into training data for that
paper's style. InstructBLIP's split (its Figure 2) holds out 13 sets, three whole task categories among them
(visual reasoning, video QA, visual conversational QA): NoCaps, Flickr30K, GQA, VSR, IconQA, TextVQA, Visual
Dialog, HatefulMemes, VizWiz, ScienceQA, MSVD-QA, MSRVTT-QA and iVQA. LLaVA-1.5 trains on GQA, VQAv2 and the
other academic sets of its mixture and reports the rest of its 12 benchmarks zero-shot; MiniGPT-v2 reports
VizWiz and HatefulMemes zero-shot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vlit.config.model import StyleName
from vlit.data.convert.captions import read_coco_caption, read_textcaps
from vlit.data.convert.items import Read
from vlit.data.convert.passthrough import read_llava_rows
from vlit.data.convert.questions import (
    aokvqa_reader,
    ask,
    generate,
    read_gqa,
    read_ocrvqa,
    read_vg_qa,
    vqa_reader,
)
from vlit.data.convert.regions import read_refcoco
from vlit.errors import VlitError


@dataclass(frozen=True)
class Source:
    title: str
    files: str
    """What PATH is, in a line (help, README and errors)."""
    read: Callable[[Path], Read]
    category: str | None
    """InstructBLIP's task category, written into each record (None: rows passed through as they are)."""
    used_by: str
    """Which papers train on it (README table)."""
    merge_limit: int | None = None
    """LLaVA-1.5's merge (`--merge-qa`): at most this many QA pairs per merged row (None: all of an image's)."""


REFCOCO_FILES = "refer's folder: `refs(unc).p` (RefCOCOg: `refs(umd).p`) + `instances.json`"
# LLaVA-1.5's appendix: RefCOCO conversations "are dissected into segments, each with fewer than 10 turns".
REFCOCO_TURNS = 9

SOURCES: dict[str, Source] = {
    "coco_caption": Source("COCO Caption", "Karpathy's `dataset_coco.json`, LAVIS's `coco_karpathy_train.json` "
                           "or `captions_train2017.json`", read_coco_caption, "captioning", "InstructBLIP"),
    "textcaps": Source("TextCaps", "`TextCaps_0.1_train.json`", read_textcaps, "captioning with reading",
                       "InstructBLIP, LLaVA-1.5"),
    "vqav2": Source("VQAv2", "`v2_OpenEnded_mscoco_train2014_questions.json` + `v2_mscoco_train2014_annotations"
                    ".json` (their folder)", vqa_reader(ask), "vqa", "InstructBLIP, LLaVA-1.5"),
    "vg_qa": Source("Visual Genome QA", "`question_answers.json` (`image_data.json` beside it for folders)",
                    read_vg_qa, "vqa", "InstructBLIP"),
    "okvqa": Source("OK-VQA", "`OpenEnded_mscoco_train2014_questions.json` + `mscoco_train2014_annotations.json`"
                    " (their folder)", vqa_reader(ask), "knowledge vqa", "InstructBLIP, LLaVA-1.5"),
    "aokvqa": Source("A-OKVQA", "`aokvqa_v1p0_train.json`", aokvqa_reader(), "knowledge vqa",
                     "InstructBLIP, LLaVA-1.5 (once per option order)"),
    "ocrvqa": Source("OCR-VQA", "`dataset.json` (train split)", read_ocrvqa, "vqa with reading",
                     "InstructBLIP, LLaVA-1.5"),
    "vqav2_qg": Source("VQAv2 question generation", "as `vqav2`", vqa_reader(generate), "question generation",
                       "InstructBLIP"),
    "okvqa_qg": Source("OK-VQA question generation", "as `okvqa`", vqa_reader(generate), "question generation",
                       "InstructBLIP"),
    "aokvqa_qg": Source("A-OKVQA question generation", "as `aokvqa`", aokvqa_reader(question_generation=True),
                        "question generation", "InstructBLIP"),
    "llava_instruct": Source("LLaVA-Instruct-150K", "`llava_instruct_150k.json` (rows kept as they are)",
                             read_llava_rows, None, "InstructBLIP, LLaVA-1.5"),
    "gqa": Source("GQA", "`train_balanced_questions.json`", read_gqa, "visual reasoning", "LLaVA-1.5"),
    "refcoco": Source("RefCOCO", REFCOCO_FILES, read_refcoco, "grounding", "LLaVA-1.5, MiniGPT-v2",
                      REFCOCO_TURNS),
    "refcoco+": Source("RefCOCO+", REFCOCO_FILES, read_refcoco, "grounding", "LLaVA-1.5, MiniGPT-v2",
                       REFCOCO_TURNS),
    "refcocog": Source("RefCOCOg", REFCOCO_FILES, read_refcoco, "grounding", "LLaVA-1.5, MiniGPT-v2",
                       REFCOCO_TURNS),
}

HELD_OUT: dict[StyleName, tuple[str, ...]] = {
    "instructblip": ("nocaps", "flickr30k", "gqa", "vsr", "iconqa", "textvqa", "visdial", "hateful_memes",
                     "vizwiz", "scienceqa", "msvd_qa", "msrvtt_qa", "ivqa"),
    "llava15": ("vizwiz", "scienceqa", "textvqa", "pope", "mme", "mmbench", "mmbench_cn", "seed_bench",
                "llava_bench", "mm_vet"),
    "minigptv2": ("vizwiz", "hateful_memes"),
}
"""Style -> the sets its paper only evaluates zero-shot."""
PAPERS: dict[StyleName, str] = {"instructblip": "InstructBLIP", "llava15": "LLaVA-1.5", "minigptv2": "MiniGPT-v2"}


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def source_for(name: str, style: StyleName) -> Source:
    """The source called `name`; a set `style`'s paper holds out, or an unknown name, raises."""
    if style not in HELD_OUT:
        raise VlitError(f"--style: {style!r} is not one of {', '.join(HELD_OUT)}")
    if _key(name) in HELD_OUT[style]:
        raise VlitError(f"{name}: held out in {PAPERS[style]}'s split (evaluated zero-shot, never trained on); "
                        f"not written into {style} training data")
    if name not in SOURCES:
        raise VlitError(f"{name}: not a training set vlit converts (known: {', '.join(SOURCES)})")
    return SOURCES[name]
