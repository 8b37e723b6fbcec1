"""The benchmarks vlit knows, as the markdown table `vlit eval --list` prints and the README holds: read from
`SUITES`, so a new suite shows up without editing anything here."""

from __future__ import annotations

from vlit.evaluation.metrics import metric_spec
from vlit.evaluation.suites import SUITES, Suite

HEADER = ("| NAME | PATH (what `NAME=PATH` reads) | prompt per style | metric (headline) | reference | published |\n"
          "|---|---|---|---|---|---|\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "–"


def _prompts(suite: Suite) -> str:
    """How each style asks, and where it ranks the candidates rather than generating an answer."""
    cells = []
    for style, text in suite.prompts.items():
        ranked = (suite.mode if style == "all" else suite.mode_for(style)) == "rank"
        cells.append(f"{'all styles' if style == 'all' else style}: {_cell(text)}{' (candidates ranked)' * ranked}")
    return "<br>".join(cells)


def _metric(suite: Suite) -> str:
    how = ", by a judge model" if suite.judged else ""
    return f"`{suite.metric}` ({metric_spec(suite.metric).headline}{how})"


def suites_table() -> str:
    """One row per benchmark of `SUITES`: its name, the files it reads, how each style asks it, its metric,
    the reference script the metric reproduces and the published numbers the report shows beside it."""
    rows = []
    for name, suite in SUITES.items():
        published = ", ".join(f"{model} {value}" for model, value in suite.published.items())
        rows.append(f"| `{name}` | {_cell(suite.files)} | {_prompts(suite) or '–'} | {_metric(suite)} | "
                    f"{_cell(suite.reference)} | {_cell(published)} |\n")
    return HEADER + "".join(rows)
