"""Wall time per phase of a job, printed as a table and written as JSON: where the minutes go."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PhaseTimer:
    """`with timer("train llava15"): ...` records that phase's seconds (a phase run twice adds up)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def add(self, seconds: dict[str, float]) -> None:
        """Phases timed elsewhere (another process's), added as if timed here."""
        for phase, s in seconds.items():
            self.seconds[phase] = self.seconds.get(phase, 0.0) + s

    @property
    def total(self) -> float:
        return time.perf_counter() - self._start

    def table(self) -> str:
        width = max([len(p) for p in self.seconds] + [5])
        lines = [f"  {phase:<{width}} {s / 60:5.1f} min" for phase, s in self.seconds.items()]
        lines.append(f"  {'total':<{width}} {self.total / 60:5.1f} min")
        return "\n".join(lines)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps({"phases_s": {p: round(s, 1) for p, s in self.seconds.items()},
                                    "total_s": round(self.total, 1)}, indent=2) + "\n")
        return path
