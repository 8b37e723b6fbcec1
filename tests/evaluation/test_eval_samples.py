"""Every benchmark folder of `../shared/eval-samples` (real rows of the files users have) loads by its name as
`vlit eval --benchmarks NAME=FOLDER` reads it. Three folders hold only part of a benchmark (MMBench and
LLaVA-Bench only the published answers, Flickr30K one train-split entry): they are refused with the one line
naming what is missing; their answers are scored in the suites' own tests."""

from __future__ import annotations

import pytest

from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks

SAMPLES = "/work/shared/eval-samples"

LOADS = {"pope": ("pope", 18), "mme": ("mme", 8), "gqa": ("gqa", 1), "textvqa": ("textvqa", 6),
         "vizwiz": ("vizwiz", 5), "scienceqa": ("scienceqa", 5), "seed": ("seed-bench", 1), "mmvet": ("mm-vet", 4),
         "nocaps": ("nocaps", 1), "vsr": ("vsr", 6), "iconqa": ("iconqa", 1), "hateful_memes": ("hateful-memes", 1),
         "refcoco": ("refcoco", 4), "refcoco+": ("refcoco", 4), "refcocog": ("refcoco", 4)}
PARTIAL = {"mmbench": ("mmbench", "no MMBench TSV"), "llava_bench": ("llava-bench-in-the-wild", "questions.jsonl"),
           "flickr30k": ("flickr30k", "no image of split 'test'")}


@pytest.mark.parametrize("name", LOADS)
def test_every_sample_folder_loads(name):
    folder, count = LOADS[name]
    bench = resolve_benchmarks([f"{name}={SAMPLES}/{folder}"])[0]
    for style in ("llava15", "instructblip", "minigptv2"):
        assert len(load_samples(bench, style)) == count


@pytest.mark.parametrize("name", PARTIAL)
def test_a_partial_folder_is_one_line_naming_what_is_missing(name):
    folder, missing = PARTIAL[name]
    with pytest.raises(VlitError, match=missing):
        load_samples(resolve_benchmarks([f"{name}={SAMPLES}/{folder}"])[0], "llava15")
