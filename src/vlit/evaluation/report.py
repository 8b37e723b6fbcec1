"""The comparison table: checkpoints as rows, benchmarks as columns grouped held-in then held-out, each with
its average, as InstructBLIP's zero-shot tables are laid out."""

from __future__ import annotations

import json
from pathlib import Path

from vlit.evaluation.metrics import metric_spec
from vlit.evaluation.runner import Result


def _columns(results: list[Result]) -> dict[str, list[tuple[str, str]]]:
    cols: dict[str, list[tuple[str, str]]] = {"held_in": [], "held_out": []}
    for r in results:
        key = (r.benchmark, r.task)
        if key not in cols[r.split]:
            cols[r.split].append(key)
    return cols


def markdown_table(results: list[Result]) -> str:
    """Primary metric x 100 (accuracy, VQA accuracy, CIDEr) per checkpoint and benchmark."""
    cols = _columns(results)
    by = {(r.checkpoint, r.benchmark, r.task): r for r in results}
    header, rule = ["checkpoint"], ["---"]
    for split, title in (("held_in", "held-in"), ("held_out", "held-out")):
        for bench, task in cols[split]:
            header.append(f"{bench} ({title}, {metric_spec(task).headline})")
            rule.append("---:")
        if cols[split]:
            header.append(f"**{title} avg**")
            rule.append("---:")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    for checkpoint in dict.fromkeys(r.checkpoint for r in results):
        row = [checkpoint]
        for split in ("held_in", "held_out"):
            values = []
            for bench, task in cols[split]:
                r = by.get((checkpoint, bench, task))
                value = r.primary if r else None
                values += [value * 100] if value is not None else []
                row.append(f"{value * 100:.1f}" if value is not None else "–")
            if cols[split]:
                # An average over some of the columns would not compare with the full rows' averages.
                complete = len(values) == len(cols[split])
                row.append(f"**{sum(values) / len(values):.1f}**" if complete else "–")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def write_report(results: list[Result], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        [{"checkpoint": r.checkpoint, "benchmark": r.benchmark, "split": r.split, "task": r.task,
          "count": r.count, **r.metrics} for r in results], indent=2) + "\n")
    path = out / "results.md"
    path.write_text(markdown_table(results))
    return path
