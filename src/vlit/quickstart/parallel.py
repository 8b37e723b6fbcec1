"""The families' jobs two or three at a time, one process each, the cores split between them.

Three small models on a few CPU cores use them badly one at a time: a step of the 135M LLM at batch 4 spends
much of its time in Python and in matrices too small for two threads to share well. Measured on 2 cores of an
Intel Xeon (float32, the quickstart's LLaVA- and MiniGPT-v2-style trainings): one after the other with 2 threads
each 346 s, side by side with 1 thread each 240 s (1.44x, `benchmarks/side_by_side.py`). So each family trains
and is evaluated in a process of its own, its output in `<out>/<family>/job.log`, and this process shows one bar
per family."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from vlit.machine import cores

POLL_S = 2.0


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
    # tqdm's bars share a lock across processes by default: a named semaphore, which `Pool.terminate` (SIGTERM)
    # leaves registered, and the parent then warns of "leaked semaphores" at its exit. This process's bars go to
    # its own log: a thread lock is enough.
    tqdm.set_lock(threading.RLock())


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


@dataclasses.dataclass
class Job:
    """One family's work: `fn(*args)` run with its output in `log`, shown as a bar of `total` whose position
    `progress()` reads from the files the job writes."""

    name: str
    fn: Callable[..., Any]
    args: tuple
    log: Path
    total: int
    progress: Callable[[], int]


def run_jobs(jobs: Sequence[Job], workers: int) -> dict[str, Any]:
    """Each job's result by name; the jobs run `workers` at a time, in the order given (longest first balances
    the processes), each in a process of `cores() // workers` threads. One worker runs them here, in turn, their
    output on the terminal as usual. An error, Ctrl-C or SIGTERM here stops every process."""
    if workers <= 1:
        return {job.name: job.fn(*job.args) for job in jobs}
    threads = max(1, cores() // workers)
    context = multiprocessing.get_context("spawn")  # no fork of a process that has started torch's threads
    bars = {job.name: tqdm(total=job.total, desc=job.name, position=i, dynamic_ncols=True)
            for i, job in enumerate(jobs)}
    results: dict[str, Any] = {}
    # SIGTERM would end this process alone and leave the workers training; as an exit it reaches the `finally`,
    # which terminates them.
    main_thread = threading.current_thread() is threading.main_thread()  # where a handler can be set
    previous = signal.signal(signal.SIGTERM, _exit_on_term) if main_thread else None
    failed: Job | None = None
    error: BaseException | None = None
    pool = context.Pool(workers, initializer=_start_worker, initargs=(threads, list(warnings.filters)))
    try:
        failed, error = _collect(pool, jobs, bars, results)
    except BaseException as e:  # Ctrl-C, SIGTERM
        error = e
    finally:
        pool.terminate()
        pool.join()
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        for bar in bars.values():
            bar.close()
    if error is not None:
        if failed is not None:
            print(f"{failed.name} failed; its output: {failed.log}", file=sys.stderr)
        raise error
    return results


def _collect(pool: Any, jobs: Sequence[Job], bars: dict[str, tqdm], results: dict[str, Any],
             ) -> tuple[Job | None, BaseException | None]:
    """Submit the jobs, follow them on their bars, put each result in `results`; the first job that fails and
    its error (None, None when every job succeeded)."""
    pending = {job.name: pool.apply_async(_logged, (job.log, job.fn, job.args)) for job in jobs}
    while pending:
        next(iter(pending.values())).wait(POLL_S)
        for job in jobs:
            bar = bars[job.name]
            if job.name in pending and pending[job.name].ready():
                try:
                    results[job.name] = pending.pop(job.name).get()
                except Exception as e:
                    return job, e
                bar.update(job.total - bar.n)
            elif job.name in pending and (position := min(job.total, job.progress())) != bar.n:
                bar.update(position - bar.n)
    return None, None


def _exit_on_term(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


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
