"""How to decode: greedy, sampling or beam search, stop strings and tokens, penalties and logit bias; one typed
set of options for the pipeline, the CLI, the API and the demo."""

from __future__ import annotations

from dataclasses import dataclass, fields

from vlit.errors import VlitError

GREEDY_BELOW = 1e-5
"""Temperatures under this decode greedily (see `GenerationOptions.sampling`)."""
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
