"""An encoder-decoder LLM (the tiny random T5 of `debug-t5`) through every inference path: ranked answers equal
brute-force scoring, batched generation equals one-at-a-time, streaming joins to the plain answer, the
processor builds encoder ids and decoder labels as LAVIS does, and `ask`, `chat`, `eval`, `serve` run on a
saved checkpoint."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from vlit.cli import main as cli
from vlit.config import Config, load_yaml
from vlit.data.conversation import Conversation, Turn
from vlit.inference.pipeline import Pipeline
from vlit.inference.ranking import rank, rank_letters, score_full

CANDIDATES = ["red", "dark blue", "a green bag", "7"]


@pytest.fixture(scope="module")
def t5(train_lora):
    from vlit.models.build import build_model

    model, processor = build_model(load_yaml(Config, "debug-t5").model)
    train_lora(model, std=0.05, seed=1)  # LoRA B != 0: every part counts
    return model.eval(), processor


@pytest.fixture
def question(red_image):
    return Conversation.single("What colour is it?", image=red_image)


def test_encoder_ids_and_decoder_labels_are_built_apart(t5, red_image):
    model, processor = t5
    turns = [Turn("user", "<image>\nWhat colour is it?"), Turn("assistant", "Red."),
             Turn("user", "And the shape?"), Turn("assistant", "A square.")]
    example = processor.encode(Conversation(turns, images=[red_image]))
    tokenizer = processor.tokenizer
    # The decoder learns the last answer and its end token; history stays in the encoder, nothing learned there.
    assert tokenizer.decode(example.labels) == "A square." + tokenizer.eos_token
    encoder = tokenizer.decode([t for t in example.input_ids if t != processor.image_token_id])
    assert "Red." in encoder and "And the shape?" in encoder and "A square" not in encoder
    assert example.input_ids[: processor.num_image_tokens] == [processor.image_token_id] * processor.num_image_tokens
    prompt = processor.encode(Conversation(turns[:1], images=[red_image]), add_generation_prompt=True)
    assert prompt.labels == []
    batch = processor([Conversation(turns, images=[red_image]), Conversation(turns[:2], images=[red_image])])
    assert batch.labels.shape[1] == len(example.labels) and batch.labels[1, -1] == -100


@pytest.mark.parametrize(("normalize", "include_end"), [("sum", True), ("mean", False)])
def test_ranked_answers_equal_brute_force_scoring(t5, question, normalize, include_end):
    model, processor = t5
    result = rank(model, processor, question, CANDIDATES, normalize, include_end, batch_size=3)
    brute = [score_full(model, processor, question, c, normalize, include_end) for c in CANDIDATES]
    torch.testing.assert_close(torch.tensor(result.scores), torch.tensor(brute), atol=1e-4, rtol=0)


def test_letters_are_ranked_by_the_decoders_first_token(t5, question):
    model, processor = t5
    result = rank_letters(model, processor, question, ("A", "B", "C"))
    assert abs(sum(torch.tensor(result.scores).exp().tolist()) - 1) < 1e-5


def test_batched_generation_equals_one_at_a_time_and_streaming(t5, red_image):
    model, processor = t5
    pipe = Pipeline(model, processor)
    blue = Image.new("RGB", (20, 50), (10, 30, 200))
    conversations = [Conversation.single("What colour is it?", image=red_image),
                     Conversation.single("Describe the picture in a few words, please.", image=blue),
                     Conversation.single("Hello?")]
    batched = pipe.generate(conversations, max_new_tokens=6)
    assert batched == [pipe.generate([c], max_new_tokens=6)[0] for c in conversations]
    assert "".join(pipe.stream(conversations[0], max_new_tokens=6)) == batched[0]


@pytest.fixture(scope="module")
def t5_checkpoint(t5, tmp_path_factory):
    from vlit.models.saving import save_model

    return save_model(t5[0], tmp_path_factory.mktemp("t5") / "ckpt")


def test_ask_chat_and_eval_run_on_a_t5_checkpoint(t5_checkpoint, tmp_path, red_image, capsys, monkeypatch):
    red_image.save(tmp_path / "red.png")
    assert cli(["ask", "--checkpoint", str(t5_checkpoint), "--image", str(tmp_path / "red.png"),
                "--max-new-tokens", "4", "What colour?"]) == 0
    assert cli(["ask", "--checkpoint", str(t5_checkpoint), "--image", str(tmp_path / "red.png"),
                "--candidates", "red,blue", "What colour?"]) == 0
    assert "red" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("What is it?\n/quit\n"))
    assert cli(["chat", "--checkpoint", str(t5_checkpoint), "--image", str(tmp_path / "red.png"),
                "--max-new-tokens", "4"]) == 0
    questions = tmp_path / "q.jsonl"
    questions.write_text(f'{{"question_id": 1, "image": "{tmp_path / "red.png"}", "text": "Is it red?", '
                         '"answers": ["yes"]}\n')
    assert cli(["eval", "--checkpoint", str(t5_checkpoint), "--benchmarks", str(questions), "--out",
                str(tmp_path / "eval"), "--max-samples", "1"]) == 0


def test_serve_answers_through_the_api(t5_checkpoint, red_image):
    import base64
    import io

    import openai

    from vlit.serving.api import create_app
    from vlit.serving.background import serve_in_background
    from vlit.serving.settings import ServerSettings

    buffer = io.BytesIO()
    red_image.save(buffer, format="PNG")
    url = f"data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"
    settings = ServerSettings(model_name="t5", api_key="k", default_max_tokens=4)
    app = create_app(Pipeline.from_pretrained(t5_checkpoint), settings)
    with serve_in_background(app) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="k", max_retries=0, timeout=60)
        message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                               {"type": "text", "text": "What colour?"}]}
        plain = client.chat.completions.create(model="t5", messages=[message], max_tokens=4)
        streamed = client.chat.completions.create(model="t5", messages=[message], max_tokens=4, stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)
    assert plain.choices[0].message.content == text


def test_the_web_demo_streams_a_t5_answer(t5, tmp_path, red_image):
    pytest.importorskip("gradio", reason="gradio is not installed (pip install 'vlit[serve]')")
    from vlit.inference.session import ChatState
    from vlit.serving.demo import CHAT, DemoHandlers

    red_image.save(tmp_path / "red.png")
    pipe = Pipeline(*t5)
    handlers = DemoHandlers(pipe, {"max_new_tokens": 5})
    state, *_ = handlers.new_image(str(tmp_path / "red.png"), ChatState())
    *_, (_, state, chat, *_rest) = list(handlers.send("What colour is it?", CHAT, state))
    expected = pipe.chat(Conversation.single("What colour is it?", image=str(tmp_path / "red.png")),
                         max_new_tokens=5)
    assert chat[-1]["content"] == expected


def test_truncation_keeps_the_encoders_end_token_and_prompts_have_no_labels(t5, red_image):
    import dataclasses

    model, processor = t5
    conversation = Conversation.single("What colour is this long question about the picture?", image=red_image)
    full = processor.encode(conversation, add_generation_prompt=True).input_ids
    eos = processor.tokenizer.eos_token_id
    if full[-1] == eos:  # a T5 tokenizer appends it; the packaged one does not
        short = dataclasses.replace(processor, max_length=len(full) - 2).encode(conversation, True).input_ids
        assert short == full[: len(full) - 3] + [eos]
    batch = processor([conversation], add_generation_prompt=True)
    assert batch.labels is None
    with torch.no_grad():  # a forward pass on a prompt batch decodes from the start token
        start = torch.full((1, 1), model.llm.config.decoder_start_token_id)
        assert model(**batch.model_inputs(), decoder_input_ids=start).logits.shape[:2] == (1, 1)
