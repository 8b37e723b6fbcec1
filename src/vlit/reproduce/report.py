"""From the arms' per-sample scores to the claims' intervals and verdicts: `report.md` (the rule, one table
per claim, its figure), a PNG per claim and `results.json`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vlit.errors import VlitError
from vlit.reproduce.claims import HELD_IN, Claim, Comparison
from vlit.reproduce.stats import RULE, Interval, Verdict, bootstrap, combine, paired, verdict

COLOURS = ["#4c72b0", "#dd8452", "#55a868"]
ArmScores = dict[str, dict[int, dict]]
"""recipe -> seed -> that arm-seed's `scores.json` (see `vlit.reproduce.arms.score_arm`)."""


@dataclass
class Compared:
    comparison: Comparison
    first: Interval
    second: Interval
    difference: Interval
    verdict: Verdict
    samples: int
    """Test samples per seed behind each arm's mean (summed over the measure's keys)."""


@dataclass
class ClaimResult:
    claim: Claim
    compared: list[Compared]
    verdict: Verdict
    per_key: dict[str, dict[str, float]]
    """arm label -> score key -> mean over seeds and samples."""
    curves: dict[str, dict[str, dict[int, float]]]
    """arm label -> held-in split -> global step -> mean over the seeds (claims with curves only)."""
    peaks: dict[str, dict[str, int]]
    """arm label -> held-in split -> the step of its best mean score over the seeds."""


def _blocks(scores: ArmScores, recipe: str, keys: tuple[str, ...], seeds: list[int],
            ids: dict[str, list[str]]) -> list[np.ndarray]:
    return [np.array([[scores[recipe][s]["scores"][key][i] for i in ids[key]] for s in seeds]) for key in keys]


def _common_ids(scores: ArmScores, recipes: list[str], key: str, seeds: list[int]) -> list[str]:
    """The samples every arm-seed of the comparison scored on `key` (the same first N of the split for all)."""
    sets = [set(scores[r][s]["scores"][key]) for r in recipes for s in seeds]
    common = sorted(set.intersection(*sets))
    if not common:
        raise VlitError(f"{key}: no sample scored by every arm and seed")
    return common


def analyse(claim: Claim, scores: ArmScores, seeds: list[int], resamples: int = 2000) -> ClaimResult:
    compared = []
    for c in claim.comparisons:
        recipes = [claim.arm(c.first).recipe, claim.arm(c.second).recipe]
        ids = {key: _common_ids(scores, recipes, key, seeds) for key in c.measure.keys}
        first, second = (_blocks(scores, r, c.measure.keys, seeds, ids) for r in recipes)
        diff = paired(first, second, resamples)
        compared.append(Compared(c, bootstrap(first, resamples), bootstrap(second, resamples), diff,
                                 verdict(diff, c.expect, c.margin), sum(len(v) for v in ids.values())))
    keys = sorted({k for c in claim.comparisons for k in c.measure.keys})
    per_key = {arm.label: {k: float(np.mean([np.mean(list(scores[arm.recipe][s]["scores"][k].values()))
                                             for s in seeds])) for k in keys} for arm in claim.arms}
    curves, peaks = {}, {}
    if claim.curves:
        for arm in claim.arms:
            by_split = {name: {int(step): float(np.mean([scores[arm.recipe][s]["curves"][name][step]
                                                          for s in seeds]))
                               for step in scores[arm.recipe][seeds[0]]["curves"][name]} for name in HELD_IN}
            curves[arm.label] = by_split
            peaks[arm.label] = {n: max(sorted(by_split[n]), key=by_split[n].get) for n in HELD_IN}
    return ClaimResult(claim, compared, combine([x.verdict for x in compared if x.comparison.decides]), per_key,
                       curves, peaks)


def _fmt(interval: Interval, scale: float, sign: bool = False) -> str:
    v = interval.scaled(scale)
    return f"{v.mean:+.1f} [{v.low:+.1f}, {v.high:+.1f}]" if sign else f"{v.mean:.1f} [{v.low:.1f}, {v.high:.1f}]"


def _expected(c: Comparison) -> str:
    margin = c.margin * c.measure.scale
    unit = "points" if c.measure.unit == "points" else "words"
    return f"higher (m = {margin:g} {unit})" if c.expect == "higher" else f"within ±{margin:g} {unit}"


def claim_section(number: int, result: ClaimResult, png: str) -> str:
    claim = result.claim
    lines = [f"### {number}. {claim.name} ({claim.paper}): **{result.verdict}**", "", f"> {claim.statement}", "",
             "Arms (one config field apart, `" + "`, `".join(claim.switch) + "`): " +
             "; ".join(f"{a.label} = `configs/{a.recipe}.yaml`" for a in claim.arms) + "."]
    if claim.note:
        lines += ["", claim.note]
    lines += ["", "| measure | first arm | second arm | difference | expected | verdict |",
              "|---|---|---|---|---|---|"]
    for x in result.compared:
        c = x.comparison
        scale = c.measure.scale
        lines.append(f"| {c.measure.name}{'' if c.decides else ' (detail)'} | {c.first}: {_fmt(x.first, scale)} | "
                     f"{c.second}: {_fmt(x.second, scale)} | {_fmt(x.difference, scale, sign=True)} | "
                     f"{_expected(c)} | {x.verdict} |")
    keys = list(next(iter(result.per_key.values())))
    lines += ["", "Per score key, mean over seeds (scores x 100; words as counted):", "",
              "| arm | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for label, values in result.per_key.items():
        lines.append(f"| {label} | " + " | ".join(f"{values[k] * (1 if k.startswith('words') else 100):.1f}"
                                                   for k in keys) + " |")
    if result.peaks:
        lines += ["", "Step of each held-in split's best score (mean over seeds), per arm; the spread is the "
                  "paper's \"peak at very different steps\" (reported, not judged):", "",
                  "| arm | " + " | ".join(HELD_IN) + " | spread |", "|---|" + "---:|" * (len(HELD_IN) + 1)]
        for label, peaks in result.peaks.items():
            values = list(peaks.values())
            lines.append(f"| {label} | " + " | ".join(str(v) for v in values) + f" | {max(values) - min(values)} |")
    lines += ["", f"![{claim.name}]({png})", ""]
    return "\n".join(lines)


def plot_claim(result: ClaimResult, path: Path) -> None:
    """Bars with 95% intervals per arm for each measure; for a claim with curves, the held-in mean over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = list(dict.fromkeys(x.comparison.measure for x in result.compared))
    panels = len(measures) + bool(result.curves)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6), squeeze=False)
    for ax, measure in zip(axes[0], measures, strict=False):
        arms: dict[str, Interval] = {}
        for x in result.compared:
            if x.comparison.measure == measure:
                arms.setdefault(x.comparison.first, x.first)
                arms.setdefault(x.comparison.second, x.second)
        values = [iv.scaled(measure.scale) for iv in arms.values()]
        err = np.array([[v.mean - v.low for v in values], [v.high - v.mean for v in values]])
        ax.bar(range(len(values)), [v.mean for v in values], yerr=err, capsize=5,
               color=COLOURS[: len(values)])
        ax.set_xticks(range(len(values)), list(arms), fontsize=8)
        ax.set_title(measure.name, fontsize=9)
        ax.set_ylabel("score x 100" if measure.unit == "points" else "words")
        ax.set_ylim(bottom=0, top=max(1.0, *(v.high for v in values)) * 1.1)
    if result.curves:
        ax = axes[0][-1]
        for (label, by_split), colour in zip(result.curves.items(), COLOURS, strict=False):
            steps = sorted(next(iter(by_split.values())))
            for curve in by_split.values():  # each held-in split, thin
                ax.plot(steps, [curve[s] * 100 for s in steps], color=colour, alpha=0.3, linewidth=0.8)
            mean = [np.mean([curve[s] for curve in by_split.values()]) * 100 for s in steps]
            ax.plot(steps, mean, color=colour, marker="o", label=f"{label} (mean)")
        ax.set_title("held-in splits (thin) and their mean over training steps", fontsize=9)
        ax.set_xlabel("global step")
        ax.legend(fontsize=8)
    fig.suptitle(f"{result.claim.name} ({result.claim.paper}): {result.verdict}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: list[ClaimResult], out: Path, header: list[str]) -> Path:
    """`report.md`, one PNG per claim and `results.json` under `out`; returns the report's path."""
    sections = []
    for number, result in enumerate(results, 1):
        png = f"{result.claim.name}.png"
        plot_claim(result, out / png)
        sections.append(claim_section(number, result, png))
    verdicts = ["| claim | paper | verdict |", "|---|---|---|"]
    verdicts += [f"| {r.claim.name} | {r.claim.paper} | {r.verdict} |" for r in results]
    text = "\n".join(["# vlit reproduce", "", *header, "", RULE, "", *verdicts, "", *sections])
    path = out / "report.md"
    path.write_text(text)
    data = [{"claim": r.claim.name, "verdict": r.verdict, "per_key": r.per_key, "curves": r.curves, "peaks": r.peaks,
             "comparisons": [{"measure": x.comparison.measure.name, "first": x.comparison.first,
                              "second": x.comparison.second, "expect": x.comparison.expect,
                              "margin": x.comparison.margin, "first_mean": asdict(x.first),
                              "second_mean": asdict(x.second), "difference": asdict(x.difference),
                              "verdict": x.verdict, "samples_per_seed": x.samples} for x in x_list]}
            for r in results for x_list in [r.compared]]
    (out / "results.json").write_text(json.dumps(data, indent=1) + "\n")
    return path
