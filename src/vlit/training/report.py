"""What a run leaves for a person: metrics as JSONL and the loss curve as a PNG."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on training machines
import matplotlib.pyplot as plt  # noqa: E402


class MetricsLog:
    """Append-only JSONL; on resume, rows after the checkpoint's step are dropped so curves do not repeat."""

    def __init__(self, path: Path, resume_from_step: int | None = None):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_from_step is None:
            path.write_text("")
        elif path.exists():
            rows = [r for r in self.rows() if r.get("global_step", 0) <= resume_from_step]
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def write(self, row: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def rows(self) -> list[dict]:
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def plot_loss(rows: list[dict], out: Path, title: str) -> Path:
    """Training loss per optimizer step, one colour per stage."""
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    stages = list(dict.fromkeys(r["stage"] for r in rows if "loss" in r))
    for stage in stages:
        points = [(r["global_step"], r["loss"]) for r in rows if r.get("stage") == stage and "loss" in r]
        # A stage logged once or twice (a short warm-up) is drawn as points: a line of one point is invisible.
        ax.plot(*zip(*points, strict=True), label=stage, linewidth=1.2, marker="o" if len(points) < 3 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if stages:
        ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
