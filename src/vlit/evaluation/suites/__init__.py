"""The papers' benchmarks, known by name (`vlit eval --benchmarks pope=playground/data/eval/pope`): for each,
how its files are found and read as users have them on disk (LLaVA's `playground/data/eval/`, the official
releases, MiniGPT-v2's `eval_data/`), how it is asked per prompt style, and how its reference script scores it.

One module per benchmark (or family) holds its reader and, where it has one of its own, its metric; `SUITES`
below is the one table of them. A suite's metric is a `vlit.evaluation.metrics.METRICS` name.
"""

from __future__ import annotations

from vlit.evaluation.suites.base import Suite
from vlit.evaluation.suites.binary import HATEFUL_MEMES, VSR
from vlit.evaluation.suites.captions import FLICKR30K, NOCAPS
from vlit.evaluation.suites.gqa import GQA
from vlit.evaluation.suites.iconqa import ICONQA
from vlit.evaluation.suites.llava_bench import LLAVA_BENCH
from vlit.evaluation.suites.mmbench import MMBENCH, MMBENCH_CN
from vlit.evaluation.suites.mme import MME
from vlit.evaluation.suites.mmvet import MMVET
from vlit.evaluation.suites.pope import POPE
from vlit.evaluation.suites.refcoco import REFCOCO, REFCOCO_PLUS, REFCOCOG
from vlit.evaluation.suites.scienceqa import SCIENCEQA
from vlit.evaluation.suites.seed import SEED
from vlit.evaluation.suites.textvqa import TEXTVQA
from vlit.evaluation.suites.vizwiz import VIZWIZ
from vlit.evaluation.suites.vqav2 import OKVQA, VQAV2

SUITES: dict[str, Suite] = {
    "pope": POPE,
    "mme": MME,
    "gqa": GQA,
    "textvqa": TEXTVQA,
    "vizwiz": VIZWIZ,
    "vqav2": VQAV2,
    "okvqa": OKVQA,
    "scienceqa": SCIENCEQA,
    "mmbench": MMBENCH,
    "mmbench_cn": MMBENCH_CN,
    "seed": SEED,
    "iconqa": ICONQA,
    "vsr": VSR,
    "hateful_memes": HATEFUL_MEMES,
    "refcoco": REFCOCO,
    "refcoco+": REFCOCO_PLUS,
    "refcocog": REFCOCOG,
    "flickr30k": FLICKR30K,
    "nocaps": NOCAPS,
    "llava_bench": LLAVA_BENCH,
    "mmvet": MMVET,
}
"""Benchmark name -> suite. A new benchmark is one module and one entry."""


def suite_of(name: str) -> Suite | None:
    return SUITES.get(name)


__all__ = ["SUITES", "Suite", "suite_of"]
