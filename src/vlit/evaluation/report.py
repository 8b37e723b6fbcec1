"""The comparison table: checkpoints as rows, benchmarks as columns grouped held-in then held-out, each with
its average, as InstructBLIP's zero-shot tables are laid out. Each cell is the benchmark's headline as the
papers print it (x 100; MME's sum as is); below the run's rows, one row per published model (LLaVA-1.5-7B,
InstructBLIP, MiniGPT-v2) with its paper's number where a column has one (`Suite.published`). An open-ended
set scored by no judge shows "unscored"."""

from __future__ import annotations

import json
from pathlib import Path

from vlit.evaluation.metrics import metric_spec
from vlit.evaluation.runner import Result

SPLITS = (("held_in", "held-in"), ("held_out", "held-out"))


def _columns(results: list[Result]) -> dict[str, list[tuple[str, str]]]:
    cols: dict[str, list[tuple[str, str]]] = {"held_in": [], "held_out": []}
    for r in results:
        key = (r.benchmark, r.task)
        if key not in cols[r.split]:
            cols[r.split].append(key)
    return cols


def _row(name: str, cols: dict[str, list[tuple[str, str]]], cell: dict[tuple[str, str], float | str]) -> str:
    """One table row: a cell per column (a number, "unscored", or "–" for none) and an average per split."""
    row = [name]
    for split, _ in SPLITS:
        values = []
        for key in cols[split]:
            value = cell.get(key, "–")
            if isinstance(value, float):
                values.append(value)
                row.append(f"{value:.1f}")
            else:
                row.append(value)
        if cols[split]:
            # An average over some of the columns would not compare with the full rows' averages.
            complete = len(values) == len(cols[split])
            row.append(f"**{sum(values) / len(values):.1f}**" if complete else "–")
    return "| " + " | ".join(row) + " |"


def markdown_table(results: list[Result]) -> str:
    """The headline of each benchmark per checkpoint, as the papers print it, then the published rows."""
    cols = _columns(results)
    header, rule = ["checkpoint"], ["---"]
    for split, title in SPLITS:
        for bench, task in cols[split]:
            header.append(f"{bench} ({title}, {metric_spec(task).headline})")
            rule.append("---:")
        if cols[split]:
            header.append(f"**{title} avg**")
            rule.append("---:")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    for checkpoint in dict.fromkeys(r.checkpoint for r in results):
        cells: dict[tuple[str, str], float | str] = {
            (r.benchmark, r.task): "unscored" if r.shown is None else r.shown
            for r in results if r.checkpoint == checkpoint}
        lines.append(_row(checkpoint, cols, cells))
    published: dict[str, dict[tuple[str, str], float | str]] = {}
    for r in results:
        for model, value in r.published.items():
            published.setdefault(model, {})[(r.benchmark, r.task)] = float(value)
    for model, cells in published.items():
        lines.append(_row(f"*{model} (published)*", cols, cells))
    return "\n".join(lines) + "\n"


def write_report(results: list[Result], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        [{"checkpoint": r.checkpoint, "benchmark": r.benchmark, "split": r.split, "task": r.task,
          "count": r.count, "skipped_rows": r.skipped_rows, **({"unscored": r.unscored} if r.unscored else {}),
          **({"judge": r.judge} if r.judge else {}), **({"published": r.published} if r.published else {}),
          **r.metrics} for r in results], indent=2) + "\n")
    path = out / "results.md"
    path.write_text(markdown_table(results))
    return path
