"""The inference pipeline: conversations in, answers out (batched, streamed, multi-turn).

Prompts are left-padded so every one ends at the last position; transformers derives position ids from the
attention mask, so a padded prompt sees exactly the positions it would see alone and batched greedy output is
token-identical to one-at-a-time output. Vision features come from a per-pipeline `FeatureCache`, so later
turns of a chat never re-encode their image.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, StopStringCriteria, TextIteratorStreamer

from vlit.data.conversation import Conversation
from vlit.data.loading.batch import Batch
from vlit.data.loading.processor import Example, Processor
from vlit.errors import VlitError
from vlit.inference.logits import penalties
from vlit.inference.ranking import Normalize, RankResult, rank, rank_letters, require_user_turn_last
from vlit.inference.stopping import Cancel, CancelRows, StopCutter, cut_at_stop
from vlit.models.feature_cache import FeatureCache
from vlit.models.vlm import VisionLanguageModel

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
GREEDY_BELOW = 1e-5
"""Temperatures under this decode greedily (see `GenerationOptions.sampling`)."""
Prompt = Conversation | Example
"""A conversation to answer, or its generation prompt encoded already (`Pipeline.encode`, or the same call on a
copy of the processor: a server tokenizes on its request threads, never on the thread that runs the model)."""


@dataclass(frozen=True)
class GenerationOptions:
    """How to decode. Greedy by default; `do_sample` uses `temperature`, `top_p`, `top_k` and `min_p`;
    `num_beams` > 1 is beam search. `stop` strings end an answer (the chat template's end-of-turn strings always
    do), and so do `stop_token_ids` (like the end-of-sequence token: neither counted nor shown). The penalties
    and `logit_bias` change the scores before any choice (`vlit.inference.logits` says how)."""

    max_new_tokens: int = 256
    min_new_tokens: int = 0
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    """Sample among the k most likely tokens; 0: all."""
    min_p: float = 0.0
    num_beams: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    repetition_penalty: float = 1.0
    """CTRL's penalty (transformers' `RepetitionPenaltyLogitsProcessor`) on tokens already in the answer."""
    frequency_penalty: float = 0.0
    """OpenAI's: subtracted once per earlier occurrence of a token in the answer."""
    presence_penalty: float = 0.0
    """OpenAI's: subtracted once from every token already in the answer."""
    logit_bias: tuple[tuple[int, float], ...] = ()
    """(token id, bias) pairs added to the scores, as OpenAI's `logit_bias`."""
    stop_token_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "stop_token_ids", tuple(self.stop_token_ids))
        object.__setattr__(self, "logit_bias", tuple((int(t), float(b)) for t, b in self.logit_bias))
        if self.max_new_tokens < 1:
            raise VlitError(f"max_new_tokens: must be >= 1, got {self.max_new_tokens}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise VlitError(f"min_new_tokens: must be in 0..max_new_tokens, got {self.min_new_tokens}")
        if self.temperature <= 0:
            raise VlitError(f"temperature: must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise VlitError(f"top_p: must be in (0, 1], got {self.top_p}")
        if self.num_beams < 1:
            raise VlitError(f"num_beams: must be >= 1, got {self.num_beams}")
        if self.top_k < 0 or not 0 <= self.min_p <= 1:
            raise VlitError(f"top_k, min_p: must be >= 0 and in [0, 1], got {self.top_k}, {self.min_p}")
        if not self.do_sample and (self.temperature != 1.0 or self.top_p != 1.0 or self.top_k or self.min_p):
            raise VlitError("temperature, top_p, top_k, min_p: only used when sampling; pass do_sample=True")
        if self.repetition_penalty <= 0:
            raise VlitError(f"repetition_penalty: must be > 0, got {self.repetition_penalty}")
        for name in ("frequency_penalty", "presence_penalty"):
            if not -2 <= getattr(self, name) <= 2:
                raise VlitError(f"{name}: must be in [-2, 2] (OpenAI's range), got {getattr(self, name)}")
        if any(not -100 <= b <= 100 for _, b in self.logit_bias):
            raise VlitError("logit_bias: biases must be in [-100, 100] (OpenAI's range)")
        if any(not s for s in self.stop):
            raise VlitError("stop: stop strings must not be empty")

    @staticmethod
    def sampling(temperature: float | None, top_p: float | None) -> dict:
        """OpenAI's two sampling fields -> the `do_sample`, `temperature`, `top_p` fields: one rule for the
        CLI, the API and the demo. Greedy unless asked to sample: neither field, or temperature 0, is greedy
        (vlit's default, unlike OpenAI's temperature 1, so that answers repeat), and so is a temperature below
        1e-5 (vLLM's rule: dividing logits by 1e-40 overflows to inf and sampling fails); any other temperature
        samples at it (a negative one is then refused by validation); a top_p below 1 given alone samples at
        temperature 1."""
        if temperature is not None and 0 <= temperature < GREEDY_BELOW:
            return {"do_sample": False}
        if temperature is None and (top_p is None or top_p >= 1):
            return {"do_sample": False}
        return {"do_sample": True, "temperature": 1.0 if temperature is None else temperature,
                "top_p": 1.0 if top_p is None else top_p}

    @classmethod
    def make(cls, **options) -> GenerationOptions:
        """Options from keyword arguments; an unknown name is a VlitError naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise VlitError(f"generation option {unknown[0]!r} unknown (have: {', '.join(sorted(known))})")
        return cls(**options)

    def generate_kwargs(self) -> dict:
        """The keyword arguments of transformers' `generate` (stop strings are added by the pipeline)."""
        kwargs = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample, "num_beams": self.num_beams}
        if self.do_sample:
            kwargs |= {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k or None,
                       "min_p": self.min_p or None}
        else:
            # The LLM's own generation config may carry sampling defaults; greedy must not warn about them.
            kwargs |= {"temperature": None, "top_p": None, "top_k": None}
        return kwargs


class Pipeline:
    """Answers conversations with a VisionLanguageModel (put in eval mode)."""

    def __init__(self, model: VisionLanguageModel, processor: Processor, feature_cache_size: int = 32,
                 meta: dict | None = None):
        self.model = model.eval()
        self.processor = processor
        #: What the checkpoint recorded about its training (e.g. `trained_parts`).
        self.meta = dict(meta or {})
        self.features = FeatureCache(model, processor, feature_cache_size)
        self._stop_criteria: dict[tuple[str, ...], StopStringCriteria] = {}

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device | None = None,
                        dtype: str | torch.dtype | None = None) -> Pipeline:
        """Load a checkpoint folder written by `save_model`; `dtype` casts the whole model (e.g. bfloat16)."""
        from vlit.models.saving import load_model, read_checkpoint_config

        if isinstance(dtype, str):
            if dtype not in DTYPES:
                raise VlitError(f"dtype: {dtype!r} unknown (have: {', '.join(DTYPES)})")
            dtype = DTYPES[dtype]
        device = _device(device)
        model, processor = load_model(folder)
        return cls(model.to(device=device, dtype=dtype), processor, meta=read_checkpoint_config(folder)[1])

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    def stop_strings(self, options: GenerationOptions) -> tuple[str, ...]:
        """The caller's stop strings, the template's and the tokenizer's eos, without repeats."""
        stops = (*options.stop, *self.processor.template.stop_strings, self.tokenizer.eos_token or "")
        return tuple(dict.fromkeys(s for s in stops if s))

    def encode(self, conversation: Conversation) -> Example:
        """The generation prompt of a conversation that ends with a user turn."""
        require_user_turn_last(conversation, "generate an answer")
        return self.processor.encode(conversation, add_generation_prompt=True)

    def inputs(self, prompts: Sequence[Prompt]) -> Batch:
        """Left-padded generation inputs on the model's device, images as (cached) features."""
        examples = [p if isinstance(p, Example) else self.encode(p) for p in prompts]
        batch = self.processor.collate(examples, padding_side="left", with_pixels=False, with_labels=False)
        return replace(batch.to(self.model.device), image_features=self.features.features(batch.images))

    @property
    def end_ids(self) -> tuple[int, ...]:
        """The LLM's end-of-sequence ids: an answer ends before them."""
        eos = self.model.llm.generation_config.eos_token_id
        return (eos,) if isinstance(eos, int) else tuple(eos or ())

    def _generate_kwargs(self, options: GenerationOptions, stop_criterion: StopStringCriteria | None = None,
                         more: Sequence[StoppingCriteria] = ()) -> dict:
        stops = stop_criterion if stop_criterion is not None else self._stops(options)
        ends = (*self.end_ids, *options.stop_token_ids)
        return {**options.generate_kwargs(), "stopping_criteria": StoppingCriteriaList([stops, *more]),
                "logits_processor": penalties(options, ends), "eos_token_id": list(ends)}

    def _stops(self, options: GenerationOptions) -> StopStringCriteria:
        """transformers' stop-string criterion, built once per set of stop strings: building it scans the
        whole vocabulary (about half a second), and `generate(stop_strings=...)` rebuilds it every call."""
        stops = self.stop_strings(options)
        if stops not in self._stop_criteria:
            if len(self._stop_criteria) >= 8:
                self._stop_criteria.pop(next(iter(self._stop_criteria)))
            self._stop_criteria[stops] = StopStringCriteria(self.tokenizer, list(stops))
        return self._stop_criteria[stops]

    def generate_ids(self, conversations: Sequence[Prompt], stop_criterion: StopStringCriteria | None = None,
                     cancelled: Sequence[threading.Event] | None = None, **generation) -> list[list[int]]:
        """The new token ids of each answer, up to (without) its end-of-sequence token; one batched call.

        `stop_criterion` is the options' stop strings compiled already (transformers' `StopStringCriteria` over
        `stop_strings(options)`), as a server compiles them off the thread that runs the model. `cancelled`
        holds an event per conversation: setting one ends that row at the next decoding step (its client left)
        and leaves the other rows as they were."""
        options = GenerationOptions.make(**generation)
        if not conversations:
            return []
        inputs = self.inputs(conversations)
        more = [CancelRows(cancelled)] if cancelled is not None else []
        with _seeded(options.seed):
            out = self.model.generate(**inputs.model_inputs(), **self._generate_kwargs(options, stop_criterion, more))
        return [self._trim(row, options) for row in out.tolist()]

    def _trim(self, ids: list[int], options: GenerationOptions) -> list[int]:
        ends = {*self.end_ids, *options.stop_token_ids}
        cut = next((i for i, t in enumerate(ids) if t in ends), len(ids))
        ids = ids[:cut]
        pad = self.tokenizer.pad_token_id
        while ids and ids[-1] == pad:  # rows that stopped early on a stop string are padded to the longest
            ids.pop()
        return ids

    def decode(self, ids: list[int], options: GenerationOptions | None = None) -> str:
        """Answer text: decoded, cut at the first stop string, stripped."""
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        return cut_at_stop(text, self.stop_strings(options or GenerationOptions())).strip()

    def generate(self, conversations: list[Conversation], **generation) -> list[str]:
        """One answer per conversation, generated as one left-padded batch."""
        options = GenerationOptions.make(**generation)
        return [self.decode(ids, options) for ids in self.generate_ids(conversations, **generation)]

    def chat(self, conversation: Conversation, **generation) -> str:
        """The assistant's next answer to a conversation that ends with a user turn."""
        return self.generate([conversation], **generation)[0]

    def stream(self, conversation: Prompt, stop_criterion: StopStringCriteria | None = None,
               **generation) -> Iterator[str]:
        """The next answer as text pieces while it is generated (greedy or sampling, not beam search);
        joined, the pieces equal `chat`'s answer. Generation runs in a thread and stops as soon as the
        caller stops iterating (e.g. a client that went away). `stop_criterion` as in `generate_ids`."""
        options = GenerationOptions.make(**generation)
        if options.num_beams > 1:
            raise VlitError("num_beams: streaming shows one sequence; beam search cannot stream")
        inputs = self.inputs([conversation])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=False)
        cancel = Cancel()
        kwargs = self._generate_kwargs(options, stop_criterion, [cancel])
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with _seeded(options.seed):
                    self.model.generate(**inputs.model_inputs(), **kwargs, streamer=streamer)
            except BaseException as e:  # re-raised in the caller's thread, which would otherwise wait forever
                failure.append(e)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        cutter = StopCutter(self.stop_strings(options))
        try:
            for chunk in streamer:
                if piece := cutter.feed(chunk):
                    yield piece
        finally:
            cancel.event.set()
            thread.join()
        if failure:
            raise failure[0]
        if rest := cutter.finish():
            yield rest

    def rank(self, conversation: Conversation, candidates: list[str], normalize: Normalize = "sum",
             include_end: bool = True) -> RankResult:
        """Candidate answers scored by log-likelihood (see `vlit.inference.ranking.rank`)."""
        features = self.features.features(conversation.images)
        return rank(self.model, self.processor, conversation, candidates, normalize, include_end, features)

    def rank_letters(self, conversation: Conversation,
                     letters: tuple[str, ...] = ("A", "B", "C", "D")) -> RankResult:
        """Option letters scored by the next-token distribution (`vlit.inference.ranking.rank_letters`)."""
        return rank_letters(self.model, self.processor, conversation, letters,
                            self.features.features(conversation.images))


def _device(device: str | torch.device | None) -> torch.device | None:
    """A device the model can move to, or a VlitError naming it."""
    if device is None:
        return None
    try:
        device = torch.device(device)
    except (RuntimeError, ValueError):
        raise VlitError(f"device: {str(device)!r} is not a device (e.g. cpu, cuda, cuda:1, mps)") from None
    try:
        torch.empty(0, device=device)  # backends not built in or absent fail here with assorted errors
    except (AssertionError, RuntimeError):
        raise VlitError(f"device: {device} is not available on this machine") from None
    return device


@contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Seed sampling without touching the caller's global RNG state."""
    if seed is None:
        yield
        return
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
