"""MME from LLaVA's eval kit (llava_mme.jsonl + MME's release or eval tool files), paired as
convert_answer_to_mme.py pairs them and scored as eval_tool/calculation.py, checked by hand on fixtures written
here and on the real rows of /work/shared/eval-samples/mme."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlit.cli import main as cli
from vlit.errors import VlitError
from vlit.evaluation.benchmarks import load_samples, resolve_benchmarks
from vlit.evaluation.metrics import metric_for
from vlit.evaluation.predictions import read_predictions
from vlit.evaluation.vqa_scores import mme_answer

SAMPLES = Path("/work/shared/eval-samples/mme")
SHORT = "Answer the question using a single word or phrase."
YN = "Please answer yes or no."

# (subtask, image, MME's question, answer); two questions per image, in MME's order.
TRUTH = [("existence", "1.jpg", f"Is there a dog? {YN}", "Yes"), ("existence", "1.jpg", f"Is there a cat? {YN}", "No"),
         ("existence", "2.jpg", f"Is there a bus? {YN}", "Yes"), ("existence", "2.jpg", f"Is there a car?  {YN}", "No"),
         ("count", "3.png", f"Are there two cups? {YN}", "Yes"),
         ("count", "3.png", f"Are there three cups? {YN}", "No"),
         ("code_reasoning", "4.png", f"Does it print 1? {YN}", "No"),
         ("code_reasoning", "4.png", f"Does it print 2? {YN}", "Yes")]
# calculation.py: lower-case; yes/no as is; else "yes" in the first 4 characters, else "no" in them, else other.
PREDICTIONS = ["Yes", "No", "There is one", "no.", "Not sure, yes", "no", "Yes", "yes"]


def _llava_row(subtask: str, image: str, question: str) -> dict:
    bare = question.replace(YN, "").strip()  # LLaVA drops MME's instruction for its short-answer line
    return {"question_id": f"{subtask}/{image}", "image": f"{subtask}/{image}", "text": f"{bare}\n{SHORT}",
            "category": subtask}


@pytest.fixture
def mme(tmp_path: Path) -> Path:
    """LLaVA's layout: llava_mme.jsonl + MME_Benchmark_release_version/ (existence with images/ and
    questions_answers_YN/, the others flat), and LLaVA's answers file."""
    folder = tmp_path / "MME"
    release = folder / "MME_Benchmark_release_version"
    for subtask, image, question, answer in TRUTH:
        flat = subtask != "existence"
        qa = release / subtask / ("" if flat else "questions_answers_YN")
        images = release / subtask / ("" if flat else "images")
        qa.mkdir(parents=True, exist_ok=True)
        images.mkdir(parents=True, exist_ok=True)
        (images / image).write_bytes(b"")
        txt = qa / f"{Path(image).stem}.txt"
        txt.write_text((txt.read_text() if txt.exists() else "") + f"{question}\t{answer}\n")
    rows = [_llava_row(t, i, q) for t, i, q, _ in TRUTH]
    (folder / "llava_mme.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    answers = [{"question_id": r["question_id"], "prompt": r["text"], "text": p}
               for r, p in zip(rows, PREDICTIONS, strict=True)]
    (folder / "answers.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    return folder


def test_calculation_reading_of_answers():
    assert [mme_answer(p) for p in PREDICTIONS] == ["yes", "no", "other", "no", "no", "no", "yes", "yes"]
    assert mme_answer(" yes, sure") == "yes" and mme_answer("Nope") == "no" and mme_answer("I think no") == "other"
    # Only the first four characters are read: "so yes" holds neither there; "  no" does.
    assert (mme_answer("so yes"), mme_answer("  no"), mme_answer("yesno"), mme_answer("noyes")) == (
        "other", "no", "yes", "no")


def test_mme_pairs_llava_questions_with_the_release_and_scores_as_calculation(mme: Path):
    samples = load_samples(resolve_benchmarks([f"mme={mme}"])[0], "llava15")
    assert [s.references[0] for s in samples] == ["yes", "no", "yes", "no", "yes", "no", "no", "yes"]
    # The two-space question of MME's file is found as convert_answer_to_mme.py finds it.
    assert samples[3].conversation.turns[0].content == f"<image>\nIs there a car?\n{SHORT}"
    assert samples[0].meta == {"question_id": "existence/1.jpg", "category": "existence"}
    assert samples[0].conversation.images == [f"{mme}/MME_Benchmark_release_version/existence/1.jpg"]
    scores = metric_for("mme")(PREDICTIONS, samples)
    # existence: right, right | other (wrong), right -> acc 3/4, acc+ 1/2 (image 1 only): 1.25
    assert (scores["existence/acc"], scores["existence/acc_plus"], scores["existence/score"]) == (0.75, 0.5, 1.25)
    # count: "not sure, yes" reads "no" (wrong), "no" right -> acc 1/2, acc+ 0: 0.5
    assert scores["count/score"] == 0.5
    # perception = existence + count = 1.75 (175.0 as MME prints it); cognition = code_reasoning: acc 1/2 -> 0.5
    assert scores["perception"] == 1.75 and scores["cognition"] == 0.5


def test_mme_styles(mme: Path):
    bench = resolve_benchmarks([f"mme={mme}"])[0]
    minigpt = load_samples(bench, "minigptv2")[3].conversation.turns[0].content
    assert minigpt == f"<image>\n[vqa] Is there a car?  {YN}"  # MME's own question, as its file writes it
    instructblip = load_samples(bench, "instructblip")[0].conversation.turns[0].content
    assert instructblip == f"<image>\nIs there a dog? {YN}"


def test_mme_from_the_eval_tool_files_alone_asks_as_llava(tmp_path: Path):
    results = tmp_path / "eval_tool" / "Your_Results"
    results.mkdir(parents=True)
    for subtask in ("existence", "count"):
        lines = [f"{i}\t{q}\t{a}\n" for t, i, q, a in TRUTH if t == subtask]
        (results / f"{subtask}.txt").write_text("".join(lines))
    samples = load_samples(resolve_benchmarks([f"mme={tmp_path}"])[0], "llava15")
    assert [s.meta["question_id"] for s in samples[:2]] == ["existence/1.jpg", "existence/1.jpg"]
    texts = [s.conversation.turns[0].content.removeprefix("<image>\n") for s in samples]
    assert texts == [_llava_row(t, i, q)["text"] for t, i, q, _ in TRUTH[:6]]


def test_mme_from_the_release_alone(mme: Path):
    (mme / "llava_mme.jsonl").unlink()
    samples = load_samples(resolve_benchmarks([f"mme={mme}"])[0], "llava15")
    release = mme / "MME_Benchmark_release_version"
    assert [s.meta["question_id"] for s in samples[::2]] == ["existence/1.jpg", "existence/2.jpg", "count/3.png",
                                                            "code_reasoning/4.png"]
    assert samples[0].conversation.images == [f"{release}/existence/images/1.jpg"]
    assert samples[4].conversation.images == [f"{release}/count/3.png"]
    assert samples[3].conversation.turns[0].content == f"<image>\nIs there a car?\n{SHORT}"
    assert metric_for("mme")(PREDICTIONS, samples)["perception"] == 1.75


def test_mme_predictions_without_a_model(mme: Path, tmp_path: Path, capsys):
    assert cli(["eval", "--benchmarks", f"mme={mme}", "--predictions", f"mme={mme / 'answers.jsonl'}",
                "--out", str(tmp_path / "out")]) == 0
    assert "| answers | 175.0 |" in capsys.readouterr().out


def test_mme_bad_files_are_named(mme: Path):
    bench = resolve_benchmarks([f"mme={mme}"])[0]
    (mme / "MME_Benchmark_release_version" / "count" / "3.txt").write_text(f"Are there two cups? {YN}\tYes\n")
    with pytest.raises(VlitError, match=r"llava_mme.jsonl:6: MME's files have no question 'Are there three cups\?"):
        load_samples(bench, "llava15")
    (mme / "MME_Benchmark_release_version" / "count" / "3.txt").write_text("Are there two cups? x\tMaybe\n")
    with pytest.raises(VlitError, match=r"count/3.txt:1: answer 'Maybe' is not yes or no"):
        load_samples(bench, "llava15")
    rows = [_llava_row(t, i, q) for t, i, q, _ in TRUTH]
    (mme / "llava_mme.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [rows[0], rows[2], rows[1]]))
    (mme / "MME_Benchmark_release_version" / "count" / "3.txt").write_text("")
    with pytest.raises(VlitError, match=r"existence question 1 \(existence/1.jpg\) is not followed by the other"):
        load_samples(bench, "llava15")


def test_the_real_llava_files_score_as_calculation():
    """LLaVA-1.5-13B's answers to the sampled pairs against MME's ground truth (Your_Results): code_reasoning
    Yes/Yes vs Yes/No -> acc 1/2, acc+ 0: 50; count Yes/No right: 200; OCR No/No vs Yes/No: 50; existence
    Yes/No right: 200. Perception (existence, count, OCR) 450, cognition 50."""
    bench = resolve_benchmarks([f"mme={SAMPLES}"])[0]
    samples = load_samples(bench, "llava15")
    rows = [json.loads(line) for line in (SAMPLES / "llava_mme.jsonl").read_text().splitlines()]
    assert [s.conversation.turns[0].content for s in samples] == [f"<image>\n{r['text']}" for r in rows]
    scores = metric_for("mme")(read_predictions(SAMPLES / "answers" / "llava-v1.5-13b.jsonl", samples), samples)
    assert scores["perception"] == pytest.approx(4.5) and scores["cognition"] == pytest.approx(0.5)
    assert scores["OCR/acc"] == 0.5 and scores["OCR/acc_plus"] == 0.0


def test_lavin_responses_score_as_calculation():
    """The eval tool's filled-in LaVIN files (`...<TAB>gt<TAB>response`): existence "yes, there is.." / "no,
    there is no.." both right -> 200; code_reasoning "yes, .. hello" right, "yes, .. world" wrong -> 50."""
    bench = resolve_benchmarks([f"mme={SAMPLES / 'eval_tool' / 'Your_Results'}"])[0]
    samples = [s for s in load_samples(bench, "llava15") if s.meta["category"] in ("existence", "code_reasoning")]
    def responses(subtask: str) -> list[str]:
        lines = (SAMPLES / "eval_tool" / "LaVIN" / f"{subtask}.txt").read_text().splitlines()
        return [line.split("\t")[3] for line in lines]

    predictions = responses("existence") + responses("code_reasoning")
    assert [s.meta["category"] for s in samples] == ["existence"] * 2 + ["code_reasoning"] * 2
    scores = metric_for("mme")(predictions, samples)
    assert scores["existence/score"] == 2.0 and scores["code_reasoning/score"] == 0.5
