"""Vision encoders: any Hugging Face vision model, or the packaged EfficientNet-Lite0. Each knows its own
preprocessing (an ImageSpec) and how many visual tokens it emits."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel
from transformers.image_processing_base import ImageProcessingMixin
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from transformers.models.auto.modeling_auto import MODEL_MAPPING

from vlit.config import VisionConfig
from vlit.data.loading.transforms import ImageSpec
from vlit.errors import VlitError
from vlit.models.loading import load_pretrained_part
from vlit.untrusted import LOAD_ERRORS, NO_REMOTE_CODE, why_not_loaded


class VisionEncoder(nn.Module):
    """float[B, 3, S, S] pixels -> float[B, N, D] features.

    `spec` is the preprocessing the encoder expects, `num_patches` is N at that size, `hidden_size` is D.
    """

    spec: ImageSpec
    num_patches: int
    hidden_size: int


class HFVisionEncoder(VisionEncoder):
    """A transformers vision tower (CLIP, SigLIP, ...): the hidden states of one layer, CLS optionally dropped,
    exactly as LLaVA's `vision_feature_layer` / `vision_feature_select_strategy` take them."""

    def __init__(self, model: PreTrainedModel, spec: ImageSpec, feature_layer: int, drop_cls: bool,
                 post_layernorm: bool = False):
        super().__init__()
        self.model = model
        self.spec = spec
        self.feature_layer = feature_layer
        self.drop_cls = drop_cls
        self.post_layernorm = post_layernorm
        if post_layernorm and not isinstance(getattr(model, "post_layernorm", None), nn.LayerNorm):
            raise VlitError(f"vision.post_layernorm: {type(model).__name__} has no post_layernorm")
        self.hidden_size = model.config.hidden_size
        with torch.no_grad():
            # One tiny forward tells the token count for any architecture (CLS or not, patch size, registers).
            probe = torch.zeros(1, 3, spec.size, spec.size, dtype=model.dtype)
            outputs = model(pixel_values=probe, output_hidden_states=True)
        patch = getattr(model.config, "patch_size", None)
        if drop_cls and patch and outputs.hidden_states[feature_layer].shape[1] == (spec.size // patch) ** 2:
            raise VlitError(f"vision.drop_cls: {type(model).__name__} has no CLS token; set drop_cls: false")
        self.num_patches = self._select(outputs).shape[1]

    def _select(self, outputs) -> torch.Tensor:
        hidden = outputs.hidden_states[self.feature_layer]
        if self.post_layernorm:
            hidden = self.model.post_layernorm(hidden)
        return hidden[:, 1:] if self.drop_cls else hidden

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        outputs = self.model(pixel_values=pixel_values.to(self.model.dtype), output_hidden_states=True)
        return self._select(outputs)


class EfficientNetEncoder(VisionEncoder):
    """EfficientNet-Lite0's last feature map float[B, 1280, h, w] as h*w visual tokens (raster order)."""

    def __init__(self, spec: ImageSpec):
        super().__init__()
        from vlit.models.efficientnet import load_efficientnet_lite0

        self.net = load_efficientnet_lite0()
        self.spec = spec
        self.hidden_size = self.net.num_features
        self.num_patches = (spec.size // 32) ** 2

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        features = self.net.forward_features(pixel_values)
        return features.flatten(2).transpose(1, 2)


def _hub_spec(name: str, cfg: VisionConfig, size: int) -> ImageSpec:
    try:
        processor, _ = ImageProcessingMixin.get_image_processor_dict(name)
    except OSError:
        processor = {}
    mean = tuple(processor.get("image_mean") or OPENAI_CLIP_MEAN)
    std = tuple(processor.get("image_std") or OPENAI_CLIP_STD)
    return ImageSpec(cfg.image_size or size, mean, std, cfg.resize)


def _vision_class(config: PretrainedConfig) -> type[PreTrainedModel] | None:
    """transformers' vision model class of a vision config. BLIP-2's and InstructBLIP's towers (EVA ViT-g) are
    not in `MODEL_MAPPING` (they have no Auto class), so they are named here."""
    from transformers import Blip2VisionConfig, Blip2VisionModel, InstructBlipVisionConfig, InstructBlipVisionModel

    towers = {Blip2VisionConfig: Blip2VisionModel, InstructBlipVisionConfig: InstructBlipVisionModel}
    return towers.get(type(config)) or MODEL_MAPPING.get(type(config), None)


def load_vision(cfg: VisionConfig) -> VisionEncoder:
    """Build the encoder named by `cfg`, in eval mode (encoders are frozen unless a stage trains them)."""
    if cfg.source == "packaged":
        from vlit.models.efficientnet import IMAGENET_LITE_SPEC

        spec = dataclasses.replace(IMAGENET_LITE_SPEC, size=cfg.image_size or IMAGENET_LITE_SPEC.size,
                                   resize=cfg.resize)
        return EfficientNetEncoder(spec).eval()
    try:
        if cfg.source in ("random", "stored"):
            config = AutoConfig.for_model(cfg.name, **cfg.random_config)
        else:
            config = AutoConfig.from_pretrained(cfg.name, **NO_REMOTE_CODE)
    except LOAD_ERRORS as e:
        raise VlitError(f"vision.name: cannot load {cfg.name!r} ({why_not_loaded(e)})") from None
    # A full CLIP/SigLIP checkpoint holds a text tower too, and a LLaVA / BLIP-2 one an LLM: take the vision
    # half and its own model class.
    vision_config = getattr(config, "vision_config", config)
    model_class = _vision_class(vision_config)
    if model_class is None:
        raise VlitError(f"vision.name: {cfg.name!r} has no transformers vision model")
    if cfg.image_size is not None and cfg.image_size != vision_config.image_size:
        raise VlitError(
            f"vision.image_size: {cfg.name!r} takes {vision_config.image_size} px, not {cfg.image_size}"
        )
    if cfg.source in ("random", "stored"):
        try:
            model = model_class(vision_config)
        except (ValueError, RuntimeError, TypeError) as e:  # e.g. a negative width: the config, not vlit
            reason = str(e).splitlines()[0]
            raise VlitError(f"vision.random_config: cannot build a {cfg.name!r} model ({reason})") from None
        # CLIP's statistics: BLIP-2's EVA (and so MiniGPT-v2's) normalises with them too.
        spec = ImageSpec(vision_config.image_size, tuple(OPENAI_CLIP_MEAN), tuple(OPENAI_CLIP_STD), cfg.resize)
    else:
        model = load_pretrained_part(model_class, cfg.name, vision_config, cfg.key_mapping, "vision")
        spec = _hub_spec(cfg.name, cfg, vision_config.image_size)
    encoder = HFVisionEncoder(model, spec, cfg.feature_layer, cfg.drop_cls, cfg.post_layernorm)
    return encoder.eval()
