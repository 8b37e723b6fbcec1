"""The comparison table: checkpoints as rows, benchmarks as columns grouped held-in then held-out, each with
its average, as InstructBLIP's zero-shot tables are laid out; then the papers' averages over several benchmarks
(`Suite.pooled`), and under the checkpoints one row per published model with its paper's numbers in the columns
that compute the same thing."""

from __future__ import annotations

import json
from pathlib import Path

from vlit.evaluation.metrics import metric_spec
from vlit.evaluation.runner import Result
from vlit.evaluation.suites import SUITES
from vlit.evaluation.suites.base import Pooled


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


def _published_rows(cols: dict[str, list[tuple[str, str]]], pools: list[Pooled]) -> list[list[str]]:
    """One row per model a paper reports on some column: its numbers as printed, "–" elsewhere."""
    suites = {split: [SUITES.get(bench) for bench, _ in cols[split]] for split in cols}
    models = [m for split in cols for s in suites[split] if s is not None for m in s.published]
    models += [m for pool in pools for m in pool.published]
    rows = []
    for model in dict.fromkeys(models):
        row = [f"{model} (published)"]
        for split in ("held_in", "held_out"):
            row += [f"{s.published[model]:g}" if s is not None and model in s.published else "–"
                    for s in suites[split]]
            row += ["–"] if cols[split] else []
        row += [f"{p.published[model]:g}" if model in p.published else "–" for p in pools]
        rows.append(row)
    return rows


def markdown_table(results: list[Result]) -> str:
    """Primary metric x 100 (accuracy, VQA accuracy, CIDEr) per checkpoint and benchmark."""
    cols = _columns(results)
    pools = _pools(results)
    by = {(r.checkpoint, r.benchmark, r.task): r for r in results}
    header, rule = ["checkpoint"], ["---"]
    for split, title in (("held_in", "held-in"), ("held_out", "held-out")):
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
        row = [checkpoint]
        for split in ("held_in", "held_out"):
            values = []
            for bench, task in cols[split]:
                r = by.get((checkpoint, bench, task))
                values += [r.primary * 100] if r else []
                row.append(f"{r.primary * 100:.1f}" if r else "–")
            if cols[split]:
                # An average over some of the columns would not compare with the full rows' averages.
                complete = len(values) == len(cols[split])
                row.append(f"**{sum(values) / len(values):.1f}**" if complete else "–")
        for pool in pools:
            value = pooled_value(pool, [r for r in results if r.checkpoint == checkpoint])
            row.append("–" if value is None else f"{value:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in _published_rows(cols, pools)]
    return "\n".join(lines) + "\n"


def write_report(results: list[Result], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        [{"checkpoint": r.checkpoint, "benchmark": r.benchmark, "split": r.split, "task": r.task,
          "count": r.count, **r.metrics} for r in results], indent=2) + "\n")
    path = out / "results.md"
    path.write_text(markdown_table(results))
    return path
