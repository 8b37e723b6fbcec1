"""Typed configs of the model's three parts and of how prompts are rendered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from vlit.config.loader import ConfigError

PartSource = Literal["packaged", "hub", "random", "stored"]
"""Where a part's weights come from: a part that ships inside a pip package, a Hugging Face hub id or local
folder, a fresh random init from `random_config` (tests and the debug recipe), or the checkpoint itself
(`stored`: built from `random_config`, then loaded from the checkpoint's weights, as a converted MiniGPT-v2 EVA
tower that exists in no transformers folder)."""

KeyMapping = dict[str, str]
"""transformers' `from_pretrained(key_mapping=...)`: regex -> replacement on the checkpoint's weight names. A
published model holds several parts in one checkpoint (LLaVA's `model.vision_tower.*`, InstructBLIP's
`language_model.*`); the mapping names the part's own weights and brings them to the part's names."""


@dataclass
class VisionConfig:
    """The image encoder. Frozen unless a training stage says otherwise."""

    source: PartSource = "packaged"
    name: str = "efficientnet-lite0"
    """packaged: `efficientnet-lite0`; hub: a hub id or local path (CLIP, SigLIP, ...); random: the
    transformers `model_type` of the vision config (e.g. `clip_vision_model`)."""
    random_config: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the transformers config when source is `random`."""
    feature_layer: int = -2
    """Hidden layer whose output becomes the visual tokens (LLaVA-1.5 uses the penultimate, -2). Ignored by
    EfficientNet, whose tokens are its last feature map."""
    drop_cls: bool = True
    """Drop the leading CLS token of ViT-style encoders (LLaVA's `default` feature strategy)."""
    image_size: int | None = None
    """Side of the square input; None keeps the encoder's own size."""
    resize: Literal["stretch", "pad", "crop"] = "stretch"
    """How an image becomes square: stretch (MiniGPT-v2), pad with the mean colour (LLaVA-1.5), or resize the
    short side and centre-crop (CLIP's own preprocessing)."""
    post_layernorm: bool = False
    """Apply the tower's own final LayerNorm to the chosen layer: MiniGPT-v2's frozen `ln_vision` (BLIP-2's
    EVA ViT-g, whose `post_layernorm` transformers' conversion filled from LAVIS's `ln_vision`)."""
    key_mapping: KeyMapping = field(default_factory=dict)
    """hub: where the tower's weights sit in a checkpoint of several parts (see `KeyMapping`); empty for a
    vision model's own folder."""

    def __post_init__(self) -> None:
        if self.source == "packaged" and self.name != "efficientnet-lite0":
            raise ConfigError(f"name: packaged vision encoder {self.name!r} unknown (have: efficientnet-lite0)")
        if self.source in ("random", "stored") and not self.random_config:
            raise ConfigError(f"random_config: required when source is {self.source!r}")
        if self.image_size is not None and self.image_size < 16:
            raise ConfigError(f"image_size: {self.image_size} is too small (>= 16)")


@dataclass
class MLPConnectorConfig:
    """LLaVA-1.5's projector: Linear-GELU-Linear (`mlp`) or a single Linear (`linear`, LLaVA-1)."""

    kind: Literal["mlp", "linear"] = "mlp"
    bias: bool = True


@dataclass
class MergeConnectorConfig:
    """MiniGPT-v2: concatenate `merge` adjacent visual tokens, then one Linear: `merge` times fewer tokens."""

    kind: Literal["merge"] = "merge"
    merge: int = 4

    def __post_init__(self) -> None:
        if self.merge < 1:
            raise ConfigError(f"merge: must be >= 1, got {self.merge}")


@dataclass
class QFormerConnectorConfig:
    """InstructBLIP's Q-Former: learned queries cross-attend to image features, and self-attend together with
    the instruction's tokens (instruction-aware); the queries are then projected to the LLM width."""

    kind: Literal["qformer"] = "qformer"
    num_queries: int = 32
    init: str = "minilm"
    """`minilm`: start from the packaged all-MiniLM-L6-v2 BERT weights (only cross-attention is fresh);
    `random`; or a BERT hub id / folder of the Q-Former's size (`bert-base-uncased`, as LAVIS starts its
    Q-Former). A model started from a checkpoint (`model.init_from`) then loads the checkpoint's weights over
    it; only what the checkpoint lacks keeps this init (BLIP-2's Q-Former has no instruction embeddings)."""
    tokenizer: str | None = None
    """The instruction's tokenizer (hub id or folder, e.g. InstructBLIP's `qformer_tokenizer` subfolder); None
    is the packaged MiniLM's (uncased WordPiece, 30522 words)."""
    vocab_size: int = 30522
    """Rows of the instruction embedding: 30522 for MiniLM / BERT, 30523 for InstructBLIP's (with `[DEC]`)."""
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536
    cross_attention_frequency: int = 1
    """A cross-attention block every this many layers (BLIP-2 uses 2 with 12 layers)."""
    instruction_aware: bool = True
    """False is BLIP-2's Q-Former (transformers' `Blip2QFormerModel`), InstructBLIP's ablation: the queries
    never see the instruction."""
    max_instruction_tokens: int = 128
    vision_norm_eps: float = 1e-5
    """Epsilon of `ln_vision`, the LayerNorm over the vision features: LAVIS's 1e-5; transformers' BLIP-2 /
    InstructBLIP hold it as the vision tower's `post_layernorm`, with the tower's 1e-6."""

    def __post_init__(self) -> None:
        if not self.init:
            raise ConfigError("init: 'minilm', 'random' or a BERT hub id / folder")
        if self.init == "minilm" and (self.hidden_size, self.num_layers, self.num_heads) != (384, 6, 12):
            raise ConfigError("init: 'minilm' needs hidden_size 384, num_layers 6, num_heads 12")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"num_heads: {self.num_heads} does not divide hidden_size {self.hidden_size}")
        if self.num_queries < 1:
            raise ConfigError(f"num_queries: must be >= 1, got {self.num_queries}")
        if self.cross_attention_frequency < 1:
            raise ConfigError(f"cross_attention_frequency: must be >= 1, got {self.cross_attention_frequency}")
        if not 1 <= self.max_instruction_tokens <= 512:
            # The Q-Former (BERT) has 512 position embeddings.
            raise ConfigError(f"max_instruction_tokens: must be in 1..512, got {self.max_instruction_tokens}")


ConnectorConfig = MLPConnectorConfig | MergeConnectorConfig | QFormerConnectorConfig


@dataclass
class LLMConfig:
    """The language model: any AutoModelForCausalLM, used as is and fed `inputs_embeds`."""

    source: PartSource = "packaged"
    name: str = "smollm2-135m-instruct"
    """packaged: `smollm2-135m-instruct`; hub: a hub id or local path; random: a transformers `model_type`."""
    random_config: dict[str, Any] = field(default_factory=dict)
    tokenizer: str | None = None
    """Tokenizer source (hub id or path) when it differs from `name`; a random LLM defaults to the packaged
    SmolLM2 tokenizer."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    attn_implementation: str | None = None
    """e.g. `sdpa` or `flash_attention_2`; None lets transformers choose."""
    key_mapping: KeyMapping = field(default_factory=dict)
    """hub: where the LLM's weights sit in a checkpoint of several parts (see `KeyMapping`); its config is the
    checkpoint's `text_config`. Empty for a causal LM's own folder."""
    model_type: str | None = None
    """hub: read the folder's config.json as this transformers model type; LLaVA's original checkpoints say
    `llava_llama`, which is a `llama` with a projector beside it."""

    def __post_init__(self) -> None:
        if self.source == "packaged" and self.name != "smollm2-135m-instruct":
            raise ConfigError(f"name: packaged LLM {self.name!r} unknown (have: smollm2-135m-instruct)")
        if self.source in ("random", "stored") and not self.random_config:
            raise ConfigError(f"random_config: required when source is {self.source!r}")


@dataclass
class LoRAConfig:
    """LoRA adapters on the LLM (peft): zero-initialised, so they change nothing until a stage trains them;
    merged into the LLM on export."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ConfigError(f"r: must be >= 1, got {self.r}")
        if not self.target_modules:
            raise ConfigError("target_modules: name at least one module")


ChatTemplateName = Literal["llm", "vicuna_v1", "llama2_inst", "chatml", "plain", "instructblip"]
PaperStyle = Literal["instructblip", "llava15", "minigptv2"]
"""The three papers' prompt styles: the papers' benchmark suites say how each of them asks."""
AblationStyle = Literal["llava15_ambiguous", "minigptv2_untagged", "multitask"]
"""Styles of the papers' ablations (`vlit reproduce`): one of the above with one thing taken away."""
StyleName = Literal[PaperStyle, AblationStyle]
"""The prompt styles of `vlit.data.prompting.styles.STYLES`."""


@dataclass
class ModelConfig:
    """A vision-language model: VisionEncoder -> Connector -> LLM, and how its prompts are rendered."""

    vision: VisionConfig = field(default_factory=VisionConfig)
    connector: ConnectorConfig = field(default_factory=MLPConnectorConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    template: ChatTemplateName = "llm"
    """`llm`: the LLM tokenizer's own chat template; or a named one (LLaVA's vicuna_v1, MiniGPT-v2's
    llama2_inst, chatml, LLaVA's stage-1 `plain`, and InstructBLIP's raw instruction after the query tokens)."""
    system_prompt: str | None = None
    """Replaces the template's default system prompt; an empty string means none."""
    lora: LoRAConfig | None = None
    """LoRA adapters on the LLM (present from the start, trained by stages that name `lora`)."""
    prompt_style: StyleName = "llava15"
    """How the model expects to be asked (`vlit.data.prompting.styles`): evaluation and serving ask in it, and
    it reads the model's answers back (option letters or texts, box syntax). Name the style its training
    data is rendered in."""
    split_at_images: bool = False
    """Tokenize the prompt piece by piece around each image, as LLaVA's original `tokenizer_image_token` does:
    with a SentencePiece tokenizer (Vicuna's) the text after an image then starts with a word mark `▁`, as
    LLaVA's own checkpoints saw in training. False tokenizes it at once, as transformers' processors do."""
    seed: int = 0
    """Seed of every freshly initialised weight (connector, random parts, LoRA), so a rebuild is identical."""
    init_from: str | None = None
    """A vlit checkpoint folder (`vlit import` or `vlit train` output) to start from: its model config is the
    base that this section's fields override, and every weight it stores is loaded before training."""
