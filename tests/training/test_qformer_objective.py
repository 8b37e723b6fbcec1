"""BLIP-2's first-stage losses on a tiny random Q-Former: each loss attends as BLIP-2's does, and they learn."""

from __future__ import annotations

import pytest
import torch

from vlit.config import ConfigError, QFormerConnectorConfig, QFormerObjectiveConfig
from vlit.data.loading.batch import TextInput
from vlit.data.loading.side_inputs import right_padded
from vlit.models.connectors import build_connector
from vlit.training.qformer_objective import TEXT, QFormerObjective

DV, DL, Q = 24, 40, 4
# [CLS] words [SEP] in MiniLM's vocabulary; two rows share an answer, as two images of one class do.
ANSWERS = [[101, 2054, 3609, 102], [101, 4175, 102], [101, 4175, 102], [101, 7592, 2088, 1996, 102]]


def objective(losses=("itc", "itm", "itg")) -> QFormerObjective:
    torch.manual_seed(0)
    cfg = QFormerConnectorConfig(num_queries=Q, init="random", hidden_size=32, num_layers=2, num_heads=4,
                                 intermediate_size=64)
    connector = build_connector(cfg, DV, DL)
    return QFormerObjective(torch.nn.Identity(), connector, QFormerObjectiveConfig(losses=list(losses))).eval()


def answers(rows=ANSWERS) -> TextInput:
    return right_padded(rows, 0)


@torch.no_grad()
def test_itc_text_features_are_a_text_only_forward_row_by_row():
    obj = objective()
    batched = obj.text_features(answers())
    for i, row in enumerate(ANSWERS):  # alone, unpadded, through transformers' Q-Former with no queries at all
        ids = torch.tensor([row])
        out = obj.connector.qformer(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        alone = torch.nn.functional.normalize(obj.heads.text_proj(out[:, 0]), dim=-1)
        torch.testing.assert_close(batched[i], alone[0], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_queries_never_see_the_text_and_are_the_connectors_image_path():
    obj = objective()
    image = obj.connector.ln_vision(torch.randn(4, 7, DV))
    first, _ = obj.grounded(image, answers())
    other = [[101, 1996, 2088, 7592, 1037, 102], [101, 102], [101, 3609, 102], [101, 2054, 102]]
    second, _ = obj.grounded(image, answers(other))
    torch.testing.assert_close(first, second, rtol=0, atol=1e-6)
    queries = obj.connector.query_tokens.expand(4, -1, -1)
    alone = obj.connector.qformer(input_ids=None, query_embeds=queries, encoder_hidden_states=image)
    torch.testing.assert_close(first, alone.last_hidden_state, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_itg_is_causal_over_the_text_and_reads_the_image():
    obj = objective()
    image = obj.connector.ln_vision(torch.randn(1, 7, DV))
    _, logits = obj.grounded(image, answers([[101, 2054, 3609, 2088, 102]]))
    _, changed = obj.grounded(image, answers([[101, 2054, 3609, 7592, 102]]))
    torch.testing.assert_close(logits[:, :3], changed[:, :3], rtol=0, atol=1e-6)
    assert (logits[:, 3:] - changed[:, 3:]).abs().max() > 1e-4
    _, other_image = obj.grounded(obj.connector.ln_vision(torch.randn(1, 7, DV)),
                                  answers([[101, 2054, 3609, 2088, 102]]))
    # Text sees the queries, which see the image (a random Q-Former's cross-attention is weak, hence the bound).
    assert (logits - other_image).abs().max() > 1e-5


def test_the_losses_fall_on_a_fixed_batch_and_each_is_reported():
    obj = objective()
    features = torch.randn(4, 7, DV)
    optimizer = torch.optim.AdamW(obj.parameters(), lr=3e-3)
    first = last = None
    for _ in range(25):
        out = obj(image_features=features, side={TEXT: answers()})
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        first = first or {k: v.item() for k, v in out.parts.items()}
        last = {k: v.item() for k, v in out.parts.items()}
    assert set(last) == {"itc", "itm", "itg"}
    for name in last:
        assert last[name] < first[name], (name, first[name], last[name])
    assert sum(last.values()) < 0.8 * sum(first.values()), (first, last)
    torch.testing.assert_close(out.loss, sum(out.parts.values()))


def test_only_the_named_losses_train():
    out = objective(["itg"])(image_features=torch.randn(4, 7, DV), side={TEXT: answers()})
    assert set(out.parts) == {"itg"}


def test_a_batch_of_one_answer_leaves_itm_without_negatives_instead_of_failing():
    obj = objective(["itm"])
    out = obj(image_features=torch.randn(3, 7, DV), side={TEXT: answers([ANSWERS[1]] * 3)})
    assert torch.isfinite(out.loss)


def test_objective_config_validation():
    with pytest.raises(ConfigError, match="losses: name at least one"):
        QFormerObjectiveConfig(losses=[])
    with pytest.raises(ConfigError, match="names a loss twice"):
        QFormerObjectiveConfig(losses=["itc", "itc"])
    with pytest.raises(ConfigError, match="max_text_tokens"):
        QFormerObjectiveConfig(max_text_tokens=2)
