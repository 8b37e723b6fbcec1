"""The quickstart's jobs in processes of their own: results back by name, each job's output in its log and
not on the terminal, the cores split between the processes, a failure raised with its log named, and the
parent's warning policy kept. The jobs are library functions, which a spawned process can import."""

from __future__ import annotations

import json
import os
import warnings

import pytest
import torch

from vlit.quickstart.parallel import Job, cores, last_step, lines, run_jobs


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
