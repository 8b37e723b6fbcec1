"""Typed configs of training: LoRA, the stages of a recipe, and run-wide settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vlit.config.data import MixtureConfig
from vlit.config.loader import ConfigError
from vlit.config.model import ChatTemplateName

Part = Literal["vision", "connector", "llm", "lora"]
"""What a stage can train: the vision encoder, the connector, the whole LLM, or only its LoRA adapters."""

QFormerLoss = Literal["itc", "itm", "itg"]
"""BLIP-2's first-stage losses: image-text contrastive, image-text matching, image-grounded text generation."""


@dataclass
class QFormerObjectiveConfig:
    """BLIP-2's first stage (`objective: qformer`): the Q-Former learns to read the frozen image features against
    each row's answer text, without the LLM. The heads it needs (projections, temperature, matching and LM heads)
    exist only while the stage trains; the saved model is the plain vlit model."""

    losses: list[QFormerLoss] = field(default_factory=lambda: ["itc", "itm", "itg"])
    """Summed with weight 1 each, as LAVIS's `Blip2Qformer`; ITM draws its hard negatives from the ITC
    similarities, computed for it even when `itc` is not trained."""
    embed_dim: int = 256
    """Width of the shared space the query and text features are projected to for ITC (BLIP-2: 256)."""
    max_text_tokens: int = 32
    """The answer's Q-Former tokens, [CLS] and [SEP] included (BLIP-2's `max_txt_len`: 32)."""

    def __post_init__(self) -> None:
        if not self.losses:
            raise ConfigError("losses: name at least one of itc, itm, itg")
        if len(set(self.losses)) != len(self.losses):
            raise ConfigError(f"losses: {self.losses} names a loss twice")
        if self.embed_dim < 1:
            raise ConfigError(f"embed_dim: must be >= 1, got {self.embed_dim}")
        if not 3 <= self.max_text_tokens <= 512:
            # [CLS] (or the generation start token), one word and [SEP]; the Q-Former has 512 positions.
            raise ConfigError(f"max_text_tokens: must be in 3..512, got {self.max_text_tokens}")


@dataclass
class StageConfig:
    """One training stage: which parts learn, at which rates, on which data, for how long."""

    name: str
    data: MixtureConfig
    train: list[Part]
    lr: dict[str, float]
    """Learning rate per trained part, e.g. {connector: 1.0e-3, lora: 2.0e-4}."""
    steps: int | None = None
    """Optimizer steps; or give `epochs` (passes over the mixture's rows)."""
    epochs: float | None = None
    batch_size: int = 8
    """Per device, per micro-batch; the global batch is batch_size x grad_accum x devices."""
    grad_accum: int = 1
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    template: ChatTemplateName | None = None
    """Chat template for this stage only (LLaVA's stage 1 uses `plain`); None keeps the model's."""
    max_length: int = 512
    load: dict[Part, str] = field(default_factory=dict)
    """Parts to load before the stage starts, from a vlit checkpoint folder, or for the connector a LLaVA
    stage-1 projector file (`mm_projector.bin`, LLaVA's `--pretrain_mm_mlp_adapter`)."""
    loss_per: Literal["token", "sample"] = "token"
    """`token`: the mean over the batch's answer tokens (LLaVA, InstructBLIP); `sample`: each row's mean first,
    so short answers (a class name) are not outweighed by long ones (a caption) in a mixed batch."""
    objective: Literal["lm", "qformer"] = "lm"
    """`lm`: the LLM's next-token loss on the answers. `qformer`: BLIP-2's first stage, the Q-Former alone learns
    from each row's answer (ITC, ITM, ITG; see `qformer`); the LLM never runs, so `template` and `loss_per` do not
    apply. It trains only `connector`, which must be an instruction-aware Q-Former."""
    qformer: QFormerObjectiveConfig | None = None
    """Losses and sizes of a `qformer` stage; omitted, BLIP-2's (all three losses, 256-d, 32 text tokens)."""
    qformer_reads_instruction: bool = True
    """False withholds the instruction from an instruction-aware Q-Former for this stage (the LLM still reads the
    whole prompt): its queries attend only to each other and the image, exactly BLIP-2's Q-Former. This is
    BLIP-2's LLM-facing second stage, the Q-Former InstructBLIP starts instruction tuning from."""

    def __post_init__(self) -> None:
        if self.objective == "qformer":
            if self.train != ["connector"]:
                raise ConfigError(f"train: a stage of objective 'qformer' trains only [connector], got {self.train}")
            self.qformer = self.qformer or QFormerObjectiveConfig()
        elif self.qformer is not None:
            raise ConfigError("qformer: only a stage of objective 'qformer' takes these settings")
        if self.objective == "qformer" and not self.qformer_reads_instruction:
            raise ConfigError("qformer_reads_instruction: a stage of objective 'qformer' reads each row's answer, "
                              "never the instruction; the setting applies to 'lm' stages")
        if not self.train:
            raise ConfigError("train: name at least one part to train")
        if "llm" in self.train and "lora" in self.train:
            raise ConfigError("train: choose 'llm' (full fine-tuning) or 'lora', not both")
        missing = [p for p in self.train if p not in self.lr]
        if missing:
            raise ConfigError(f"lr: no learning rate for trained part {missing[0]!r}")
        extra = [p for p in self.lr if p not in self.train]
        if extra:
            raise ConfigError(f"lr: {extra[0]!r} is not trained in this stage")
        if (self.steps is None) == (self.epochs is None):
            raise ConfigError("steps: give exactly one of steps or epochs")
        if self.steps is not None and self.steps < 1 or self.epochs is not None and self.epochs <= 0:
            raise ConfigError("steps: the stage must be longer than zero")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("batch_size: batch_size and grad_accum must be >= 1")
        if not self.data.datasets:
            raise ConfigError("data.datasets: a stage needs at least one dataset")


@dataclass
class TrainConfig:
    """Run-wide training settings."""

    seed: int = 0
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    feature_cache: bool = True
    """Compute frozen vision features once per image and reuse them across epochs and stages."""
    cache_dir: str | None = None
    """Feature cache folder; default `$VLIT_CACHE/features`."""
    group_by_length: bool = True
    group_size: int = 16
    """Mega-batch = batch_size x group_size draws, sorted by modality and length (LLaVA's grouping)."""
    packing: bool = False
    """Run each batch's rows as one sequence without padding (`vlit.models.packing`; decoder-only LLMs): the
    same loss, no padding computed, logits only where a token is learned. For short rows: with eager or SDPA
    attention the packed sequence's mask costs its length squared (see `packing_max_tokens`)."""
    packing_max_tokens: int = 256
    """With `packing`, a batch whose rows hold more real tokens than this runs padded. The attention of a packed
    sequence grows with the square of its length, so a large batch packed costs more than its padding: on a CPU
    with eager attention, 32 quickstart rows (about 1,300 tokens) took 2.2x as long packed as padded, while 4 rows
    (150-190 tokens) ran 1.01-1.13x faster packed (`benchmarks/packing.py`)."""
    num_workers: int | None = None
    """DataLoader worker processes that tokenize (and, without the feature cache, decode images) ahead of the
    loop; 0 encodes in the loop. None: 0 on a machine of 2 cores or fewer, else min(4, cores - 1). Measured
    on 2 cores (`benchmarks/train_throughput.py --quick`): 2 workers cut the loop's wait for a batch from 3.3
    to 1.4 ms per step with the feature cache on, and from 15.8 to 3.1 ms with it off (images decoded every
    step), but a step takes about 3.5 s and the workers' processes take CPU from it: 9% fewer samples/s. With
    more cores the workers have cores of their own and hide tokenizing and decoding for free."""
    log_every: int = 10
    save_every: int = 0
    """Checkpoint every this many optimizer steps (0: at the end of each stage only)."""
    keep_last: int = 2

    def __post_init__(self) -> None:
        if self.packing_max_tokens < 1:
            raise ConfigError(f"packing_max_tokens: must be >= 1, got {self.packing_max_tokens}")
        if self.num_workers is not None and self.num_workers < 0:
            raise ConfigError(f"num_workers: must be >= 0 or null, got {self.num_workers}")


@dataclass
class DataConfig:
    """Where dataset files live and which datasets are held out."""

    root: str = "data"
    """Folder that dataset paths are relative to (relative to the working directory)."""
    build: Literal["quickstart"] | None = None
    """Build vlit's own quickstart datasets into `root` when they are missing."""
    build_scale: float = 1.0
    """Row-count multiplier of that build (the debug recipe uses a tiny one)."""
    held_out: list[str] = field(default_factory=list)
    """Datasets only ever evaluated zero-shot: a stage that trains on one is a config error."""
