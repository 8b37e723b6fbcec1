"""A run killed with SIGKILL and resumed ends with exactly the same weights as the same run uninterrupted; a
damaged checkpoint is passed over on resume, and a disk that fills or refuses a write is one line that leaves the
previous checkpoint as it was."""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from vlit.cli import main as cli
from vlit.config import Config, load_yaml
from vlit.manifest import sha256, verify_manifest
from vlit.training.checkpoint import latest_checkpoint, resume_checkpoint, verify_checkpoint
from vlit.training.loop import Trainer


def _command(train_config, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vlit.cli", "train", "debug", f"data.root={train_config.data.root}",
            "data.build=null", f"train.cache_dir={train_config.train.cache_dir}", "train.save_every=3",
            "--out", str(out), *extra]



def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model" / "model.safetensors")


@pytest.mark.slow
# Mid stage 1, the stage boundary, mid stage 2; and with DataLoader workers, which prefetch past the checkpoint.
@pytest.mark.parametrize("kill_after, workers", [(3, None), (6, None), (9, None), (3, 2), (9, 2)])
def test_sigkill_and_resume_is_bit_identical(train_config, tmp_path, kill_after, workers, kill_after_checkpoint,
                                            one_thread):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    extra = [f"train.num_workers={workers or 0}"]
    subprocess.run(_command(train_config, reference, *extra), check=True, capture_output=True, env=one_thread)
    kill_after_checkpoint(_command(train_config, resumed, *extra), resumed, kill_after, env=one_thread)
    subprocess.run(_command(train_config, resumed, *extra, "--resume"), check=True, capture_output=True,
                   env=one_thread)
    expected, got = _weights(reference), _weights(resumed)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name


def test_checkpoints_are_atomic_and_pruned(train_config, tmp_path):
    Trainer(train_config, tmp_path / "run").run()
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert checkpoints == ["step-00000009", "step-00000012"]  # keep_last 2 of 3, 6, 9, 12
    # A write killed half way leaves a temporary folder, which resume ignores.
    (tmp_path / "run" / "checkpoints" / ".step-00000015.tmp").mkdir()
    assert latest_checkpoint(tmp_path / "run").name == "step-00000012"
    files = {p.name for p in (tmp_path / "run" / "checkpoints" / "step-00000012").rglob("*") if p.is_file()}
    assert not {f for f in files if f.endswith((".bin", ".pt", ".pkl"))}
    assert {"optimizer.safetensors", "rng.safetensors", "trainer_state.json", "model.safetensors",
            "manifest.json"} <= files
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000


@pytest.fixture(scope="module")
def finished(debug_data, tmp_path_factory) -> tuple[Path, list[str]]:
    """A finished debug run (checkpoints step-9 and step-12, the final model) and the `vlit train` arguments that
    resume a copy of it (`--out` appended by the test)."""
    cache = tmp_path_factory.mktemp("features")
    # No DataLoader workers (the machine's default may have some): the resumed copies must repeat it bit for bit.
    cfg = load_yaml(Config, "debug", [f"data.root={debug_data}", f"train.cache_dir={cache}", "train.num_workers=0"])
    run = tmp_path_factory.mktemp("finished") / "run"
    Trainer(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, build=None)), run).run()
    return run, ["train", "debug", f"data.root={debug_data}", "data.build=null", f"train.cache_dir={cache}",
                 "train.num_workers=0", "--resume"]


def _copy(run: Path, to: Path, drop: tuple[str, ...] = ()) -> Path:
    shutil.copytree(run, to)
    for name in drop:
        shutil.rmtree(to / name)
    return to


def _flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _same_final_weights(run: Path, reference: Path) -> None:
    assert verify_manifest(run / "model")
    expected, got = _weights(reference), _weights(run)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)


@pytest.mark.parametrize("damage, file, reason", [
    (_cut, "model/model.safetensors", "truncated"),
    (_flip_a_bit, "model/model.safetensors", "changed since it was written"),
    (Path.unlink, "optimizer.safetensors", "missing"),
    (_cut, "rng.safetensors", "truncated"),
    (_cut, "trainer_state.json", "truncated"),
    (_flip_a_bit, "model/config.json", "changed since it was written"),
], ids=["weights cut", "weights bit flip", "optimizer missing", "rng cut", "trainer state cut", "config edited"])
def test_resume_passes_over_a_damaged_checkpoint_naming_what_is_wrong(finished, tmp_path, caplog, damage, file,
                                                                      reason):
    run = _copy(finished[0], tmp_path / "run")
    damage(run / "checkpoints" / "step-00000012" / file)
    with caplog.at_level(logging.WARNING, logger="vlit.training.checkpoint"):
        assert resume_checkpoint(run) == run / "checkpoints" / "step-00000009"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0].startswith(f"{run / 'checkpoints' / 'step-00000012' / file}: {reason}")
    assert "step-00000012 is damaged" in warnings[0] and "resuming from step-00000009" in warnings[1]


def test_resuming_before_a_damaged_checkpoint_ends_bit_identical(finished, tmp_path):
    reference, args = finished
    run = _copy(reference, tmp_path / "run", drop=("model",))
    _flip_a_bit(run / "checkpoints" / "step-00000012" / "model" / "model.safetensors")
    assert cli([*args, "--out", str(run)]) == 0
    _same_final_weights(run, reference)


def test_a_run_with_no_sound_checkpoint_is_one_line(finished, tmp_path, capsys):
    run = _copy(finished[0], tmp_path / "run")
    _flip_a_bit(run / "checkpoints" / "step-00000012" / "model" / "model.safetensors")
    (run / "checkpoints" / "step-00000009" / "rng.safetensors").unlink()
    assert cli([*finished[1], "--out", str(run)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith(f"vlit train: error: {run / 'checkpoints'}: no checkpoint")
    assert "step-00000012/model/model.safetensors: changed" in errors[0]
    assert "step-00000009/rng.safetensors: missing" in errors[0]


def _fail_writes(monkeypatch, under: Path, error: Exception) -> None:
    """safetensors' writer fails for every file under `under`, as a full or refusing disk makes it fail."""
    real = safetensors.torch.save_file

    def save_file(tensors, filename, metadata=None):
        if Path(filename).is_relative_to(under):
            raise error
        real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)


FULL = SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
"""What safetensors raises when the disk fills."""


@pytest.mark.parametrize("cause", ["disk full", "permission denied", "read-only folder"])
def test_a_refused_checkpoint_write_is_one_line_and_leaves_the_last_one(finished, tmp_path, monkeypatch, capsys,
                                                                        cause):
    reference, args = finished
    run = _copy(reference, tmp_path / "run", drop=("model", "checkpoints/step-00000012"))
    before = {p: sha256(p) for p in (run / "checkpoints").rglob("*") if p.is_file()}
    checkpoints = run / "checkpoints"
    if cause == "read-only folder":
        checkpoints.chmod(0o555)
        if os.access(checkpoints, os.W_OK):  # root (CAP_DAC_OVERRIDE) writes there anyway
            checkpoints.chmod(0o755)
            pytest.skip("this user writes into read-only folders (root); the injected EACCES covers this path")
    else:
        error = FULL if cause == "disk full" else PermissionError(errno.EACCES, "Permission denied")
        _fail_writes(monkeypatch, checkpoints / ".step-00000012.tmp", error)
    try:
        assert cli([*args, "--out", str(run)]) == 2
    finally:
        checkpoints.chmod(0o755)
    err = capsys.readouterr().err
    todo = "free space on that disk" if cause == "disk full" else "make the folder writable"
    # A folder that refuses the checkpoint's temporary folder is the one named; else the checkpoint.
    where = checkpoints if cause == "read-only folder" else checkpoints / "step-00000012"
    expected = (f"vlit train: error: {where}: cannot write the checkpoint", todo,
                "then rerun with --resume: it continues from step-00000009, which is untouched")
    line = next(line for line in err.splitlines() if line.startswith("vlit train: error:"))
    assert all(part in line for part in expected), line
    assert "Traceback" not in err
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-00000009"]  # no temporary folder left
    assert before == {p: sha256(p) for p in checkpoints.rglob("*") if p.is_file()}
    verify_checkpoint(checkpoints / "step-00000009")
    monkeypatch.undo()
    assert cli([*args, "--out", str(run)]) == 0  # space freed: resume carries on
    _same_final_weights(run, reference)


def test_a_full_disk_at_the_final_model_is_one_line_and_resume_writes_it(finished, tmp_path, monkeypatch, capsys):
    reference, args = finished
    run = _copy(reference, tmp_path / "run", drop=("model",))
    _fail_writes(monkeypatch, run / "model", FULL)
    assert cli([*args, "--out", str(run)]) == 2
    line = next(line for line in capsys.readouterr().err.splitlines() if "error" in line)
    assert line == (f"vlit train: error: {run / 'model'}: cannot write the final model (No space left on device); "
                    "free space on that disk (or write elsewhere), then rerun with --resume: it writes the model "
                    "again from step-00000012")
    monkeypatch.undo()
    assert cli([*args, "--out", str(run)]) == 0
    _same_final_weights(run, reference)
