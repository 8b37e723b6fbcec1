"""The continuous-batching engine: rows that join at different steps decode as `generate` does alone (Llama's
rotary positions, GPT-2's learned ones, a Q-Former's instruction-aware tokens, T5's encoder-decoder), penalties
and biases as `generate` applies them, seeded samples that ignore their neighbours, grammars that hold, and a
second turn from the first turn's KV cache equal to one from nothing."""

from __future__ import annotations

import dataclasses
import re

import pytest

from vlit.config import Config, load_yaml
from vlit.data.conversation import Conversation
from vlit.inference.constraints import Grammars
from vlit.inference.engine import Engine, Sequence
from vlit.inference.options import GenerationOptions
from vlit.inference.pipeline import Pipeline

QUESTIONS = ["What is this?", "Hi.", "Describe a red fox in the snow, please.", "Count to three.",
             "Tell me a story about the sea and the boats."]
LENGTHS = (5, 12, 20, 7, 16)


def _run(engine: Engine, seqs: list[Sequence], every: int = 3, burst: int = 1) -> None:
    """Decode `seqs`: `burst` join first (prefilled as one batch), then one every `every` steps while there is
    room."""
    pending, steps = list(seqs), 0
    while pending and len(engine) < min(burst, engine.capacity):
        engine.join(pending.pop(0))
    while pending or len(engine):
        if pending and engine.room > 0 and steps % every == 0:
            engine.join(pending.pop(0))
        engine.step()
        steps += 1


def _alone(pipe: Pipeline, conversation: Conversation, options: GenerationOptions) -> list[int]:
    return pipe.generate_ids([conversation], **dataclasses.asdict(options))[0]


def _check_joining_rows(pipe: Pipeline, red_image, max_rows: int = 4) -> Engine:
    conversations = [Conversation.single(q, image=red_image if i % 2 else None) for i, q in enumerate(QUESTIONS)]
    options = [GenerationOptions(max_new_tokens=n) for n in LENGTHS]
    engine = Engine(pipe, max_rows)
    seqs = [Sequence(pipe.encode(c), o) for c, o in zip(conversations, options, strict=True)]
    _run(engine, seqs, burst=3)
    for seq, conversation, o in zip(seqs, conversations, options, strict=True):
        ids = _alone(pipe, conversation, o)
        assert seq.ids == ids and seq.text == pipe.decode(ids, o)
        assert seq.finish_reason == ("length" if len(ids) == o.max_new_tokens else "stop")
    return engine


@pytest.mark.parametrize("which", ["llama", "gpt2"])
def test_rows_that_join_at_different_steps_decode_as_they_do_alone(which, debug_model, gpt2_model, red_image):
    pipe = Pipeline(*(debug_model if which == "llama" else gpt2_model))
    _check_joining_rows(pipe, red_image)


def test_a_qformer_connector_decodes_without_prefix_caching(qformer_model, red_image):
    pipe = Pipeline(*qformer_model)
    assert _check_joining_rows(pipe, red_image).prefixes is None  # its image tokens read the question


def test_an_encoder_decoder_decodes_one_answer_at_a_time(red_image):
    from vlit.models.build import build_model

    pipe = Pipeline(*build_model(load_yaml(Config, "debug-t5").model))
    assert _check_joining_rows(pipe, red_image).capacity == 1


def test_penalties_and_biases_as_generate_applies_them(debug_model):
    pipe = Pipeline(*debug_model)
    conversation = Conversation.single("Tell me a story about the sea.")
    plain = _alone(pipe, conversation, GenerationOptions(max_new_tokens=12))
    variants = [GenerationOptions(max_new_tokens=12, repetition_penalty=1.8),
                GenerationOptions(max_new_tokens=12, frequency_penalty=2.0, presence_penalty=1.0),
                GenerationOptions(max_new_tokens=12, logit_bias=((plain[1], 100.0),)),
                GenerationOptions(max_new_tokens=12, min_new_tokens=12, stop_token_ids=(plain[2],))]
    seqs = [Sequence(pipe.encode(conversation), o) for o in variants]
    _run(Engine(pipe, 4), seqs, every=1)
    for seq, options in zip(seqs, variants, strict=True):
        assert seq.ids == _alone(pipe, conversation, options), options
    assert seqs[0].ids != plain and set(seqs[2].ids) == {plain[1]} and len(seqs[3].ids) == 12


def test_a_seeded_sample_ignores_its_neighbours(debug_model):
    pipe = Pipeline(*debug_model)
    example = pipe.encode(Conversation.single("Tell me a story."))
    seeded = GenerationOptions(max_new_tokens=10, do_sample=True, temperature=1.3, top_k=50, top_p=0.9, seed=4)
    alone = Sequence(example, seeded)
    _run(Engine(pipe, 4), [alone])
    crowd = [Sequence(example, GenerationOptions(max_new_tokens=10, do_sample=True, temperature=1.3)),
             Sequence(example, seeded), Sequence(example, GenerationOptions(max_new_tokens=10))]
    _run(Engine(pipe, 4), crowd, every=1)
    assert crowd[1].ids == alone.ids


def test_a_grammar_holds_and_ends_the_answer(debug_model):
    pipe = Pipeline(*debug_model)
    vocab = pipe.model.llm.get_output_embeddings().weight.shape[0]
    grammars = Grammars(pipe.tokenizer, vocab, pipe.end_ids)
    seqs = [Sequence(pipe.encode(Conversation.single(q)), GenerationOptions(max_new_tokens=40),
                     grammars.regex("(yes|no) [0-9]{2}"), top_logprobs=0) for q in QUESTIONS]
    _run(Engine(pipe, 8), seqs, every=1)
    for seq in seqs:
        assert re.fullmatch("(yes|no) [0-9]{2}", seq.text) and seq.finish_reason == "stop"
        assert len(seq.logprobs) == len(seq.ids)
    with pytest.raises(Exception, match="cannot be compiled"):
        grammars.regex("(unclosed")


def test_a_second_turn_from_the_first_turns_cache_equals_one_from_nothing(debug_model, red_image):
    pipe = Pipeline(*debug_model)
    first = Conversation.single("Describe the picture in detail, please.", image=red_image)
    options = GenerationOptions(max_new_tokens=16)
    engine = Engine(pipe, 4)
    answer = Sequence(pipe.encode(first), options)
    _run(engine, [answer])
    second = first.add("assistant", answer.text).add("user", "And the colour?")
    cached = Sequence(pipe.encode(second), options)
    _run(engine, [cached])
    fresh = Sequence(pipe.encode(second), options)
    _run(Engine(pipe, 4, prefix_cache_size=0), [fresh])
    assert cached.cached_tokens > len(cached.example) // 2 and fresh.cached_tokens == 0
    assert cached.ids == fresh.ids == _alone(pipe, second, options)
