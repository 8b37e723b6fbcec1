"""The families' jobs two or three at a time, one process each, the cores split between them.

Three small models on a few CPU cores use them badly one at a time: a step of the 135M LLM at batch 4 spends
much of its time in Python and in matrices too small for two threads to share well. Measured on 2 cores of an
Intel Xeon (float32, the quickstart's LLaVA- and MiniGPT-v2-style trainings): one after the other with 2 threads
each 310 s, side by side with 1 thread each 226 s (1.37x). So each family trains and is evaluated in a process
of its own, its output in `<out>/<family>/job.log`, and this process shows one bar per family."""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import json
import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

POLL_S = 2.0


def cores() -> int:
    """CPU cores this process may use (its affinity, not the host's count, in a container)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_workers(jobs: int) -> int:
    """A process per job up to the cores on a CPU; one on a GPU, where the jobs' kernels would share one device
    anyway and a process each only adds the start-up."""
    import torch

    return 1 if torch.cuda.is_available() else max(1, min(jobs, cores()))


def _start_worker(threads: int, filters: list) -> None:
    import torch

    torch.set_num_threads(threads)
    # The parent's warning policy: the CLI's silenced noise, and a test run's FutureWarnings raised as errors.
    warnings.filters[:] = filters


def _logged(log: Path, fn: Callable[..., Any], args: tuple) -> Any:
    """`fn(*args)` with this process's output (bars, warnings, prints) written to `log` instead of the terminal,
    where another process's bars would overwrite its lines."""
    import logging

    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        handler = logging.StreamHandler(f)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
        try:
            return fn(*args)
        finally:
            root.removeHandler(handler)


class Job:
    """One family's work: `fn(*args)` run with its output in `log`, shown as a bar whose position `progress()`
    reads from the files the job writes."""

    def __init__(self, name: str, fn: Callable[..., Any], args: tuple, log: Path, total: int,
                 progress: Callable[[], int]):
        self.name, self.fn, self.args, self.log, self.total, self.progress = name, fn, args, log, total, progress


def run_jobs(jobs: Sequence[Job], workers: int) -> dict[str, Any]:
    """Each job's result by name; the jobs run `workers` at a time, in the order given (longest first balances
    the processes), each in a process of `cores() // workers` threads. One worker runs them here, in turn, their
    output on the terminal as usual."""
    if workers <= 1:
        return {job.name: job.fn(*job.args) for job in jobs}
    threads = max(1, cores() // workers)
    context = multiprocessing.get_context("spawn")  # no fork of a process that has started torch's threads
    bars = {job.name: tqdm(total=job.total, desc=job.name, position=i, dynamic_ncols=True)
            for i, job in enumerate(jobs)}
    results: dict[str, Any] = {}
    with futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                     initargs=(threads, list(warnings.filters))) as pool:
        running = {pool.submit(_logged, job.log, job.fn, job.args): job for job in jobs}
        try:
            pending = set(running)
            while pending:
                done, pending = futures.wait(pending, timeout=POLL_S, return_when=futures.FIRST_COMPLETED)
                for job in jobs:
                    position = min(job.total, job.progress())
                    if job.name not in results and position != bars[job.name].n:
                        bars[job.name].update(position - bars[job.name].n)
                for future in done:
                    job = running[future]
                    try:
                        results[job.name] = future.result()
                    except BaseException:
                        print(f"{job.name} failed; its output: {job.log}", file=sys.stderr)
                        raise
                    bars[job.name].update(job.total - bars[job.name].n)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            for bar in bars.values():
                bar.close()
    sys.stdout.flush()
    return results


def lines(paths: Sequence[Path]) -> int:
    """Lines in the files that exist of `paths` (answers written, one per line)."""
    count = 0
    for path in paths:
        with contextlib.suppress(OSError), path.open("rb") as f:
            count += sum(1 for _ in f)
    return count


def last_step(metrics: Path) -> int:
    """The last `global_step` a training logged in its `metrics.jsonl` (0 before the first)."""
    with contextlib.suppress(OSError):
        for line in reversed(metrics.read_text().splitlines()):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if "global_step" in record and "loss" in record:
                    return int(record["global_step"])
    return 0
