"""The report table (headlines as the papers print them, a row per published model, "unscored" for an
open-ended set without a judge) and `vlit eval --list`, which reads `SUITES` and is what the README holds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from vlit.cli import main as cli
from vlit.config.model import PaperStyle
from vlit.evaluation.metrics import METRICS, MetricSpec
from vlit.evaluation.report import markdown_table
from vlit.evaluation.runner import Result
from vlit.evaluation.suites import SUITES
from vlit.evaluation.suites.base import EVAL_STYLES, Suite
from vlit.evaluation.suites.listing import suites_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_headlines_published_rows_and_unscored_sets(monkeypatch):
    # A benchmark whose headline is already in the paper's units (as MME's summed score): shown as is.
    monkeypatch.setitem(METRICS, "summed", MetricSpec(None, "perception", scale=1.0))
    results = [
        Result("mine", "pope", "held_out", "pope", {"f1": 0.8}, 18, published={"LLaVA-1.5-7B": 85.9}),
        Result("mine", "llava_bench", "held_out", "llava_bench", {}, 60, unscored="no judge model"),
        Result("mine", "mme", "held_out", "summed", {"perception": 1234.56}, 8,
               published={"LLaVA-1.5-7B": 1510.7, "InstructBLIP (Vicuna-7B)": 1212.8}),
        Result("other", "pope", "held_out", "pope", {"f1": 0.5}, 18, published={"LLaVA-1.5-7B": 85.9}),
    ]
    header, rule, mine, other, llava, instructblip = markdown_table(results).splitlines()
    assert header == ("| checkpoint | pope (held-out, f1) | llava_bench (held-out, relative) | "
                      "mme (held-out, perception) | **held-out avg** |")
    assert mine == "| mine | 80.0 | unscored | 1234.6 | – |"
    assert other == "| other | 50.0 | – | – | – |"
    assert llava == "| *LLaVA-1.5-7B (published)* | 85.9 | – | 1510.7 | – |"
    assert instructblip == "| *InstructBLIP (Vicuna-7B) (published)* | – | – | 1212.8 | – |"


def test_a_complete_published_row_has_its_average():
    results = [Result("mine", "pope", "held_out", "pope", {"f1": 0.8}, 18, published={"LLaVA-1.5-7B": 85.9})]
    assert markdown_table(results).splitlines()[3] == "| *LLaVA-1.5-7B (published)* | 85.9 | **85.9** |"


def test_the_list_reads_the_suites_table(monkeypatch, capsys):
    assert cli(["eval", "--list"]) == 0
    printed = capsys.readouterr().out
    assert printed == suites_table()
    assert all(f"| `{name}` | {suite.files}" in printed for name, suite in SUITES.items())
    assert "| `llava_bench` |" in printed and "(relative, by a judge model)" in printed
    toy = Suite(read=SUITES["pope"].read, metric="pope", files="a toy folder", prompts={"llava15": "a | b"},
                reference="toy.py", published={"LLaVA-1.5-7B": 1.0})
    monkeypatch.setitem(SUITES, "toy", toy)
    assert suites_table().splitlines()[-1] == ("| `toy` | a toy folder | llava15: a \\| b | `pope` (f1) | toy.py | "
                                               "LLaVA-1.5-7B 1.0 |")


def test_every_suite_says_how_each_style_asks_it_and_what_its_metric_follows():
    assert sorted(EVAL_STYLES) == sorted(get_args(PaperStyle))
    for name, suite in SUITES.items():
        assert suite.reference.strip(), name
        assert list(suite.prompts) in (["all"], list(EVAL_STYLES)), name
        assert all(text.strip() for text in suite.prompts.values()), name


def test_the_readme_holds_the_list():
    """The README's benchmark table is `vlit eval --list`'s output: a new suite means pasting it again."""
    text = README.read_text()
    found = re.search(r"<!-- vlit eval --list -->\n(.*?)<!-- end of vlit eval --list -->", text, re.S)
    assert found is not None and found.group(1) == suites_table()
