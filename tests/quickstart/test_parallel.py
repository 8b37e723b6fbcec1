"""The quickstart's jobs in processes of their own: results back by name, each job's output in its log and
not on the terminal, the cores split between the processes, a failure raised with its log named, and the
parent's warning policy kept. The jobs are library functions, which a spawned process can import."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch

from vlit.machine import cores
from vlit.quickstart.parallel import Job, last_step, lines, run_jobs


def _job(name, fn, args, tmp_path, total=1):
    return Job(name, fn, args, tmp_path / name / "job.log", total, lambda: 0)


def test_jobs_run_in_processes_of_their_own_with_their_output_in_their_logs(tmp_path, capfd):
    jobs = [_job("pid", os.getpid, (), tmp_path), _job("threads", torch.get_num_threads, (), tmp_path),
            _job("talk", print, ("said by the job",), tmp_path)]
    results = run_jobs(jobs, workers=2)
    assert results["pid"] != os.getpid()
    assert results["threads"] == max(1, cores() // 2)
    assert results["talk"] is None
    assert "said by the job" in (tmp_path / "talk" / "job.log").read_text()
    assert "said by the job" not in capfd.readouterr().out


def test_one_worker_runs_the_jobs_here(tmp_path):
    assert run_jobs([_job("pid", os.getpid, (), tmp_path)], workers=1) == {"pid": os.getpid()}


def test_a_failed_job_raises_here_and_names_its_log(tmp_path, capfd):
    with pytest.raises(ValueError, match="invalid literal"):
        run_jobs([_job("bad", int, ("not a number",), tmp_path), _job("pid", os.getpid, (), tmp_path)], workers=2)
    assert f"bad failed; its output: {tmp_path / 'bad' / 'job.log'}" in capfd.readouterr().err


def test_the_workers_keep_the_parents_warning_policy(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        with pytest.raises(FutureWarning, match="next year"):
            run_jobs([_job("warn", warnings.warn, ("next year", FutureWarning), tmp_path)], workers=2)


def test_progress_is_read_from_what_a_job_writes(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    assert last_step(metrics) == 0
    metrics.write_text("\n".join(json.dumps(r) for r in [
        {"event": "stage_start", "global_step": 0}, {"global_step": 10, "loss": 1.0},
        {"global_step": 20, "loss": 0.5}, {"event": "stage_start", "global_step": 20}]) + "\n{\"global_st")
    assert last_step(metrics) == 20
    answers = tmp_path / "a.predictions.jsonl"
    answers.write_text("1\n2\n3\n")
    assert lines([answers, tmp_path / "missing.jsonl"]) == 3


def test_sigterm_stops_the_workers_too(tmp_path):
    script = ("import sys, time; from pathlib import Path; from vlit.quickstart.parallel import Job, run_jobs; "
              "run_jobs([Job(n, time.sleep, (120,), Path(sys.argv[1]) / n / 'job.log', 1, lambda: 0) "
              "for n in 'ab'], workers=2)")
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)])
    try:
        children: list[int] = []
        for _ in range(300):  # the two workers started (spawned processes take a few seconds)
            time.sleep(0.1)
            found = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout
            children = [int(pid) for pid in found.split()]
            if (tmp_path / "a" / "job.log").exists() and (tmp_path / "b" / "job.log").exists():
                break
        assert len(children) >= 2
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in children)
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie (exited, not yet reaped) is gone
    except (ProcessLookupError, FileNotFoundError):
        return False
