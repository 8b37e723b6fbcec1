"""What the API server allows: one typed, validated place for every limit (`vlit serve` flags map onto it)."""

from __future__ import annotations

from dataclasses import dataclass

from vlit.errors import VlitError

MIB = 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    """Limits and switches of the OpenAI-compatible server. The defaults suit one machine serving a few users;
    every limit answers with an OpenAI error naming it rather than letting one request starve the others."""

    model_name: str = "vlit"
    """The one model id `/v1/models` lists; requests naming another model get 404."""
    api_key: str | None = None
    """When set, every `/v1/` request needs `Authorization: Bearer <api_key>` (401 otherwise)."""
    max_batch_size: int = 8
    """Answers decoded in one batch at most (1 turns batching off); a request joins the running batch at the next
    decoding step while there is room."""
    static_batching: bool = False
    """The older policy, kept to measure against: a batch of requests with equal options starts only when the
    previous batch has finished."""
    batch_wait_ms: float = 10.0
    """With `static_batching`: how long the first waiting request may wait for others to share its batch."""
    prefix_cache_size: int = 8
    """Finished answers whose KV cache (prompt and answer) is kept for the conversation's next turn (0: none)."""
    max_queue: int = 64
    """Requests waiting beyond this get 503 at once instead of a long wait."""
    max_body_bytes: int = 20 * MIB
    """Request body size; a larger body gets 413 before it is parsed (as soon as its declared or read size
    passes this)."""
    max_image_bytes: int = 10 * MIB
    """Encoded size of one image (a data URI's decoded bytes or a fetched file)."""
    max_image_pixels: int = 4096 * 4096
    max_images: int = 4
    """Images per request."""
    max_tokens_limit: int = 1024
    """The largest `max_tokens` a request may ask for."""
    default_max_tokens: int = 256
    """New tokens per answer when a request does not say."""
    max_prompt_tokens: int = 4096
    """Prompt length (text plus image tokens) above which a request is refused. The model's own context length
    (its LLM config's `max_position_embeddings`) is enforced besides, prompt plus `max_tokens`."""
    max_prompt_chars: int | None = None
    """Characters of text over all messages, checked before anything is tokenized (tokenizing costs about a
    second per megabyte); None: 16 per token of `max_prompt_tokens` (a token is rarely longer), so a prompt
    refused here would have been refused as too many tokens anyway."""
    max_stop_chars: int = 128
    """Length of one stop string: compiling stop strings scans the whole vocabulary, for longer strings longer
    (a 4,000-character one took 8 s)."""
    allowed_image_hosts: tuple[str, ...] = ()
    """Hosts whose http(s) image URLs are fetched; every other remote URL is refused."""
    image_fetch_timeout_s: float = 10.0
    """The whole fetch of one remote image, connection to last byte (not per read: a host dripping a byte a
    second would otherwise hold a request for as long as it liked)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_image_hosts", tuple(h.lower() for h in self.allowed_image_hosts))
        if self.max_prompt_chars is None:
            object.__setattr__(self, "max_prompt_chars", 16 * self.max_prompt_tokens)
        if not self.model_name:
            raise VlitError("model_name: must not be empty")
        if self.api_key == "":
            raise VlitError("api_key: must not be empty (leave it out to serve without a key)")
        for name in ("max_batch_size", "max_queue", "max_body_bytes", "max_image_bytes", "max_image_pixels",
                     "max_tokens_limit", "default_max_tokens", "max_prompt_tokens", "max_prompt_chars",
                     "max_stop_chars"):
            if getattr(self, name) < 1:
                raise VlitError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("max_images", "prefix_cache_size"):
            if getattr(self, name) < 0:
                raise VlitError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.batch_wait_ms < 0 or self.image_fetch_timeout_s <= 0:
            raise VlitError("batch_wait_ms, image_fetch_timeout_s: must be >= 0 and > 0")
        if self.default_max_tokens > self.max_tokens_limit:
            raise VlitError(f"default_max_tokens: {self.default_max_tokens} is over max_tokens_limit "
                            f"{self.max_tokens_limit}")
