"""`vlit reproduce`: the papers' ablations run in miniature on the quickstart data, with seeds, intervals and a
verdict per claim by a stated rule.

- `claims`: each claim as data: the paper, the statement, the paired recipes (`configs/reproduce/`), the one
  config field they differ in, and what is compared in which direction;
- `stats`: paired bootstrap intervals over seeds and test samples, and the verdict rule;
- `arms`: trains one recipe with one seed (resuming) and scores it sample by sample;
- `report`: the Markdown table, a PNG per claim and `results.json`;
- `cli`: `vlit reproduce [CLAIM ...] --seeds N --out DIR [--quick]`.
"""
