from pathlib import Path

import huggingface_hub
import pytest
import torch

from satpipe.errors import ConfigError, PretrainedWeightsError
from satpipe.models import classifier
from satpipe.models.classifier import create_classifier, head_and_backbone_parameters, split_weight_decay


def test_unknown_backbone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="timm has no model 'efficientnet_b99'"):
        create_classifier("efficientnet_b99", 10, 3, pretrained=False)


def test_pretrained_offline_gives_a_clear_error_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(classifier, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(PretrainedWeightsError) as err:
        create_classifier("resnet10t", 10, 3, pretrained=True)
    assert "cannot reach huggingface.co" in str(err.value) and "model.pretrained=false" in str(err.value)
    assert "\n" not in str(err.value)


def test_pretrained_offline_uses_weights_in_the_hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    published = timm.create_model("resnet10t", pretrained=False)  # stands in for the hub's ImageNet weights
    snapshot = tmp_path / "models--timm--resnet10t.c3_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    save_file(published.state_dict(), snapshot / "model.safetensors")
    (tmp_path / "models--timm--resnet10t.c3_in1k" / "refs").mkdir()
    (tmp_path / "models--timm--resnet10t.c3_in1k" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(classifier, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    model = create_classifier("resnet10t", 10, 3, pretrained=True)
    assert torch.equal(model.conv1[0].weight, published.conv1[0].weight)
    assert model.get_classifier().out_features == 10  # the head is new


@pytest.mark.parametrize("in_chans", [3, 13])
def test_any_band_count_and_a_complete_parameter_split(in_chans: int) -> None:
    model = create_classifier("efficientnet_b0", 10, in_chans, pretrained=False)
    assert model(torch.zeros(2, in_chans, 64, 64)).shape == (2, 10)
    head, backbone = head_and_backbone_parameters(model)
    assert {n for n, _ in head} == {"classifier.weight", "classifier.bias"}
    assert len(head) + len(backbone) == len(list(model.parameters()))
    decay, no_decay = split_weight_decay(backbone)
    assert all(p.ndim > 1 for p in decay) and all(p.ndim == 1 for p in no_decay)
