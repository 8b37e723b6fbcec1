from __future__ import annotations

import dataclasses

import pytest
import torch

from vlit.data.conversation import Conversation
from vlit.data.loading.processor import IGNORE_INDEX
from vlit.data.prompting.chat_templates import Llama2Inst
from vlit.errors import VlitError
from vlit.inference.candidates import candidate_ids, tokenize_candidates
from vlit.inference.pipeline import Pipeline
from vlit.inference.ranking import rank, rank_letters, rank_many, score_full

CANDIDATES = ["red", "a dark blue square", "bag", "bag pack", "7"]


@torch.no_grad()
def brute_force(model, processor, conversation: Conversation, candidate: str) -> tuple[float, int]:
    """Summed log-prob and count of the tokens training learns for `candidate` as the final answer, from one
    forward pass over the whole conversation (independent of the ranking code's tokenization)."""
    full = conversation.add("assistant", candidate)
    batch = processor([full])
    labels = batch.labels[0]
    learned = (labels != IGNORE_INDEX).nonzero().flatten().tolist()
    last_turn = [learned[-1]]  # the final answer: the last run of consecutive learned positions
    while len(last_turn) < len(learned) and learned[-len(last_turn) - 1] == last_turn[0] - 1:
        last_turn.insert(0, learned[-len(last_turn) - 1])
    logits = model(batch.input_ids, batch.attention_mask, pixel_values=batch.pixel_values,
                   side=batch.side).logits[0].log_softmax(-1)
    total = sum(float(logits[i - 1, labels[i]]) for i in last_turn)
    return total, len(last_turn)


def _conversations(image) -> dict[str, Conversation]:
    with_image = Conversation.single("What is in the picture?", image=image)
    return {
        "image": with_image,
        "text": Conversation.single("Name a colour."),
        "multi-turn": with_image.add("assistant", "A square.").add("user", "Which colour is it?"),
    }


@pytest.mark.parametrize("kind", ["image", "text", "multi-turn"])
@pytest.mark.parametrize("variant", ["mlp", "qformer", "gpt2"])
def test_ranking_equals_brute_force_scoring(kind, variant, debug_model, qformer_model, gpt2_model, red_image):
    model, processor = {"mlp": debug_model, "qformer": qformer_model, "gpt2": gpt2_model}[variant]
    model.eval()  # the Q-Former has dropout; `rank` switches to eval mode by itself (checked below)
    conversation = _conversations(red_image)[kind]
    lengths = [len(candidate_ids(processor, conversation, c)) for c in CANDIDATES]
    assert len(set(lengths)) >= 3  # right padding really happens
    expected = [brute_force(model, processor, conversation, c) for c in CANDIDATES]
    assert [n for _, n in expected] == lengths  # the candidate's tokens are exactly the learned ones
    summed = rank(model, processor, conversation, CANDIDATES, "sum", batch_size=3)
    mean = rank(model, processor, conversation, CANDIDATES, "mean")
    torch.testing.assert_close(summed.scores, [s for s, _ in expected], atol=1e-4, rtol=0)
    torch.testing.assert_close(mean.scores, [s / n for s, n in expected], atol=1e-4, rtol=0)
    assert summed.best == max(zip(CANDIDATES, summed.scores, strict=True), key=lambda p: p[1])[0]
    assert summed.ranked()[0] == (summed.best, max(summed.scores))


@dataclasses.dataclass(frozen=True)
class TrailingSpaceInst(Llama2Inst):
    """MiniGPT-v2's literal `[/INST] ` prompt: its final space merges into the answer's first BPE word."""

    answer_prefix: str = ""

    def user(self, text, system):
        return super().user(text, system) + " "


@pytest.mark.parametrize("template", ["llama2_inst", "vicuna_v1", "llm", "plain", "trailing_space"])
def test_every_template_ranks_like_brute_force(template, debug_config, red_image):
    """Including a template whose prompt ends in a space that Llama/SmolLM2 BPE merges into the answer."""
    import dataclasses

    from vlit.models.build import build_model

    name = "llama2_inst" if template == "trailing_space" else template
    model, processor = build_model(dataclasses.replace(debug_config.model, template=name))
    if template == "trailing_space":
        processor.template = TrailingSpaceInst(eos=processor.tokenizer.eos_token)
    model.eval()
    # plain renders user turns as image markers only, so its answers would run together
    conversation = _conversations(red_image)["image" if template == "plain" else "multi-turn"]
    expected = [brute_force(model, processor, conversation, c) for c in CANDIDATES]
    assert [n for _, n in expected] == [len(candidate_ids(processor, conversation, c)) for c in CANDIDATES]
    tokens = tokenize_candidates(processor, conversation, CANDIDATES)
    if template == "trailing_space":  # the space merges into " red" but not into "7", which keeps it as context
        assert (tokens.prompt_drop, tokens.context) == (1, [0, 0, 0, 0, 1])
    elif template == "llama2_inst":  # vlit's template puts that space in the learned answer: nothing merges
        assert (tokens.prompt_drop, tokens.context) == (0, [0, 0, 0, 0, 0])
    result = rank(model, processor, conversation, CANDIDATES, batch_size=2)
    torch.testing.assert_close(result.scores, [s for s, _ in expected], atol=1e-4, rtol=0)
    letters = rank_letters(model, processor, conversation, ("A", "B"))
    assert abs(sum(torch.tensor(letters.scores).exp().tolist()) - 1) < 1e-5


@pytest.mark.parametrize("normalize", ["sum", "mean"])
def test_answer_text_alone_equals_full_sequence_scoring(normalize, debug_model, red_image):
    model, processor = debug_model
    conversation = _conversations(red_image)["image"]
    result = rank(model, processor, conversation, CANDIDATES, normalize, include_end=False)
    baseline = [score_full(model, processor, conversation, c, normalize, False) for c in CANDIDATES]
    torch.testing.assert_close(result.scores, baseline, atol=1e-4, rtol=0)


def test_the_end_marker_tells_a_word_from_its_longer_phrase(debug_model, red_image):
    _, processor = debug_model
    conversation = _conversations(red_image)["image"]
    bag, pack = (candidate_ids(processor, conversation, c, include_end=False) for c in ("bag", "bag pack"))
    assert pack[: len(bag)] == bag  # without the end marker "bag" is a prefix of "bag pack"
    bag_end, pack_end = (candidate_ids(processor, conversation, c) for c in ("bag", "bag pack"))
    assert pack_end[: len(bag_end)] != bag_end
    assert bag_end[-1] == processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert processor.tokenizer.decode(pack) == "bag pack"


def test_pipeline_ranking_reuses_cached_features(debug_model, red_image):
    pipe = Pipeline(*debug_model)
    conversation = _conversations(red_image)["image"]
    first = pipe.rank(conversation, CANDIDATES)
    again = pipe.rank(conversation, CANDIDATES)
    assert (pipe.features.hits, pipe.features.misses) == (1, 1)
    assert first.scores == again.scores
    direct = rank(pipe.model, pipe.processor, conversation, CANDIDATES)
    torch.testing.assert_close(first.scores, direct.scores, atol=1e-5, rtol=0)


def test_letters_are_the_next_token_distribution_restricted(debug_model, red_image):
    model, processor = debug_model
    conversation = Conversation.single("Which?\nA. red\nB. blue\nC. green\nAnswer with the option's letter.",
                                       image=red_image)
    result = rank_letters(model, processor, conversation, ("A", "B", "C"))
    batch = processor([conversation], add_generation_prompt=True)
    with torch.no_grad():
        logits = model(batch.input_ids, batch.attention_mask, pixel_values=batch.pixel_values).logits
    ids = [processor.tokenizer.convert_tokens_to_ids(x) for x in ("A", "B", "C")]
    expected = logits[0, -1, ids].log_softmax(-1)
    torch.testing.assert_close(torch.tensor(result.scores), expected, atol=1e-4, rtol=0)
    assert abs(sum(torch.tensor(result.scores).exp().tolist()) - 1) < 1e-5
    assert result.best == "ABC"[int(expected.argmax())]


def test_ranking_errors_are_clear(debug_model):
    model, processor = debug_model
    conversation = Conversation.single("Pick one.")
    with pytest.raises(VlitError, match="at least one candidate"):
        rank(model, processor, conversation, [])
    with pytest.raises(VlitError, match="normalize"):
        rank(model, processor, conversation, ["a"], normalize="max")
    with pytest.raises(VlitError, match="not one"):
        rank_letters(model, processor, conversation, ("A", "unbelievably"))
    with pytest.raises(VlitError, match="last turn must be the user's"):
        rank(model, processor, Conversation.single("Pick one.", "a"), ["a", "b"])


def test_ranking_turns_dropout_off_and_restores_the_training_mode(qformer_model, red_image):
    model, processor = qformer_model
    conversation = _conversations(red_image)["image"]
    model.train()
    try:
        first = rank(model, processor, conversation, CANDIDATES)
        assert rank(model, processor, conversation, CANDIDATES).scores == first.scores  # no dropout noise
        assert all(m.training for m in model.modules())
    finally:
        model.eval()


@pytest.mark.parametrize("variant", ["mlp", "qformer", "gpt2"])
def test_ranking_many_conversations_in_one_batch_equals_each_alone(variant, debug_model, qformer_model,
                                                                    gpt2_model, red_image):
    model, processor = {"mlp": debug_model, "qformer": qformer_model, "gpt2": gpt2_model}[variant]
    model.eval()
    conversations = list(_conversations(red_image).values())  # prompts of different lengths: left padding
    candidates = [CANDIDATES, ["bag", "7"], CANDIDATES[1:4]]
    # candidates of several prompts share a chunk (batch_size 4 cuts across conversations)
    many = rank_many(model, processor, conversations, candidates, batch_size=4)
    for conversation, cands, result in zip(conversations, candidates, many, strict=True):
        alone = rank(model, processor, conversation, cands)
        assert result.candidates == cands and result.best == alone.best
        torch.testing.assert_close(result.scores, alone.scores, atol=1e-4, rtol=0)


def test_pipeline_ranks_letters_of_many_conversations_as_each_alone(debug_model, red_image):
    pipe = Pipeline(*debug_model)
    conversations = [Conversation.single(f"Which?{' Think.' * k}\nA. red\nB. blue\nC. green", image=red_image)
                     for k in range(3)]
    many = pipe.rank_letters_many(conversations, ("A", "B", "C"))
    for conversation, result in zip(conversations, many, strict=True):
        torch.testing.assert_close(result.scores, pipe.rank_letters(conversation, ("A", "B", "C")).scores,
                                   atol=1e-5, rtol=0)
