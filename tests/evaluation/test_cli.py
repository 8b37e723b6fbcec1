"""`vlit eval` on files that are no regular file: one line naming the path, exit 2, never a hang."""

from __future__ import annotations

import json
import os

from vlit.cli import main


def test_a_benchmark_file_or_image_that_is_no_regular_file_is_one_line(checkpoint, special_files, tmp_path,
                                                                        capsys):
    fifo = tmp_path / "bench.json"
    os.mkfifo(fifo)  # never opened: refused by its type (nothing ever writes to it)
    assert main(["eval", "--checkpoint", str(checkpoint), "--benchmarks", str(fifo), "--out",
                 str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"vlit eval: error: {fifo}: not a regular file (a FIFO)"
    zero, reason = next(iter(special_files.items()))
    questions = tmp_path / "q.jsonl"
    row = {"question_id": 1, "image": str(zero), "text": "What is it?", "answer": "x"}
    questions.write_text(json.dumps(row) + "\n")
    assert main(["eval", "--checkpoint", str(checkpoint), "--benchmarks", str(questions), "--out",
                 str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"vlit eval: error: {zero}: {reason}"
