import pytest
import torch

import config
from satpipe.errors import ConfigError
from satpipe.models import create_model, list_models
from satpipe.models.satunet import SpatialAttention


def test_satunet_has_the_published_size() -> None:
    n = sum(p.numel() for p in create_model("satunet", in_channels=4).parameters())
    assert abs(n - 9.78e6) < 0.01e6, n


@pytest.mark.parametrize("channels", [4, 9])
@pytest.mark.parametrize("size", [256, 384])
def test_satunet_output_shape(channels: int, size: int) -> None:
    model = create_model("satunet", in_channels=channels).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, channels, size, size)).shape == (2, 1, size, size)


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_runs_forward_and_backward(name: str) -> None:
    model = create_model(name, in_channels=5)
    out = model(torch.randn(2, 5, 64, 64))
    assert out.shape == (2, 1, 64, 64)
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_attention_starts_as_the_identity() -> None:
    block = SpatialAttention(16).eval()
    x, g = torch.randn(1, 16, 8, 8), torch.randn(1, 16, 8, 8)
    assert torch.equal(block(g, x), x)  # gamma starts at 0: the skip passes unchanged
    block.gamma.data.fill_(1.0)
    assert not torch.equal(block(g, x), x)


def test_unknown_architecture_and_config_list_agree_with_the_registry() -> None:
    with pytest.raises(ConfigError, match="unknown architecture 'segformer'"):
        create_model("segformer")
    assert tuple(list_models()) == config.SEGMENTATION_ARCHS


@pytest.mark.parametrize("name", list_models())
def test_forward_is_the_head_over_the_features(name: str) -> None:
    model = create_model(name, in_channels=3).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        assert len(features) >= 4 and all(f.shape[0] == 2 for f in features)
        assert torch.equal(model.forward_head(features), model(x))
