"""The comparison table: checkpoints as rows, benchmarks as columns grouped held-in then held-out, each with
its average, as InstructBLIP's zero-shot tables are laid out (a headline that is a mean over samples with its 95%
interval beside it, `vlit.evaluation.intervals`); then the papers' averages over several benchmarks
(`Suite.pooled`). Each cell is the benchmark's headline as the papers print it (x 100; MME's sum as is); below
the run's rows, one row per published model (LLaVA-1.5-7B, InstructBLIP, MiniGPT-v2) with its paper's number
where a column has one (`Suite.published`, `Pooled.published`). An open-ended set scored by no judge shows
"unscored"."""

from __future__ import annotations

import json
from pathlib import Path

from vlit.evaluation.intervals import format_interval
from vlit.evaluation.metrics import metric_spec
from vlit.evaluation.runner import Result
from vlit.evaluation.suites import SUITES
from vlit.evaluation.suites.base import Pooled

SPLITS = (("held_in", "held-in"), ("held_out", "held-out"))


def _columns(results: list[Result]) -> dict[str, list[tuple[str, str]]]:
    cols: dict[str, list[tuple[str, str]]] = {"held_in": [], "held_out": []}
    for r in results:
        key = (r.benchmark, r.task)
        if key not in cols[r.split]:
            cols[r.split].append(key)
    return cols


def _pools(results: list[Result]) -> list[Pooled]:
    pools: list[Pooled] = []
    for r in results:
        suite = SUITES.get(r.benchmark)
        if suite is not None and suite.pooled is not None and suite.pooled not in pools:
            pools.append(suite.pooled)
    return pools


def pooled_value(pool: Pooled, results: list[Result]) -> float | None:
    """The pool's average (x 100) over one checkpoint's results: the mean of every part score of its members,
    None unless there are exactly `pool.parts` of them (a mean over fewer splits is another number)."""
    parts = [v for r in results if r.benchmark in pool.members
             for k, v in r.metrics.items() if k.endswith(pool.key)]
    return sum(parts) / len(parts) * 100 if len(parts) == pool.parts else None


def _row(name: str, cols: dict[str, list[tuple[str, str]]], cell: dict[tuple[str, str], float | str],
         pooled: list[str], intervals: dict[tuple[str, str], str] | None = None) -> str:
    """One table row: a cell per column (a number with its 95% interval where there is one, "unscored", or
    "–" for none), an average per split, then the pooled averages."""
    intervals = intervals or {}
    row = [name]
    for split, _ in SPLITS:
        values = []
        for key in cols[split]:
            value = cell.get(key, "–")
            if isinstance(value, float):
                values.append(value)
                row.append(f"{value:.1f} {intervals[key]}" if key in intervals else f"{value:.1f}")
            else:
                row.append(value)
        if cols[split]:
            # An average over some of the columns would not compare with the full rows' averages.
            complete = len(values) == len(cols[split])
            row.append(f"**{sum(values) / len(values):.1f}**" if complete else "–")
    return "| " + " | ".join(row + pooled) + " |"


def markdown_table(results: list[Result]) -> str:
    """The headline of each benchmark per checkpoint, as the papers print it, then the published rows."""
    cols = _columns(results)
    pools = _pools(results)
    header, rule = ["checkpoint"], ["---"]
    for split, title in SPLITS:
        for bench, task in cols[split]:
            header.append(f"{bench} ({title}, {metric_spec(task).headline})")
            rule.append("---:")
        if cols[split]:
            header.append(f"**{title} avg**")
            rule.append("---:")
    for pool in pools:
        header.append(f"{pool.name} ({pool.parts} parts)")
        rule.append("---:")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    for checkpoint in dict.fromkeys(r.checkpoint for r in results):
        cells: dict[tuple[str, str], float | str] = {
            (r.benchmark, r.task): "unscored" if r.shown is None else r.shown
            for r in results if r.checkpoint == checkpoint}
        intervals = {(r.benchmark, r.task): format_interval(r.interval, metric_spec(r.task).scale)
                     for r in results if r.checkpoint == checkpoint and r.interval and r.shown is not None}
        values = [pooled_value(pool, [r for r in results if r.checkpoint == checkpoint]) for pool in pools]
        lines.append(_row(checkpoint, cols, cells, ["–" if v is None else f"{v:.2f}" for v in values], intervals))
    published: dict[str, dict[tuple[str, str], float | str]] = {}
    for r in results:
        for model, value in r.published.items():
            published.setdefault(model, {})[(r.benchmark, r.task)] = float(value)
    for pool in pools:
        for model in pool.published:
            published.setdefault(model, {})
    for model, cells in published.items():
        pooled = [f"{p.published[model]:g}" if model in p.published else "–" for p in pools]
        lines.append(_row(f"*{model} (published)*", cols, cells, pooled))
    return "\n".join(lines) + "\n"


def write_report(results: list[Result], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        [{"checkpoint": r.checkpoint, "benchmark": r.benchmark, "split": r.split, "task": r.task,
          "count": r.count, "skipped_rows": r.skipped_rows, **({"unscored": r.unscored} if r.unscored else {}),
          **({"judge": r.judge} if r.judge else {}), **({"published": r.published} if r.published else {}),
          **({"interval_95": list(r.interval)} if r.interval else {}),
          **r.metrics} for r in results], indent=2) + "\n")
    path = out / "results.md"
    path.write_text(markdown_table(results))
    return path
