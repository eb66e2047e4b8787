"""Scene classifiers: any timm backbone, any number of input bands."""

from __future__ import annotations

import logging

import timm
from torch import nn

from satpipe.errors import ConfigError, PretrainedWeightsError

logger = logging.getLogger(__name__)


def create_classifier(
    backbone: str, num_classes: int, in_chans: int, *, pretrained: bool, drop_rate: float = 0.0
) -> nn.Module:
    """Create a timm classifier.

    With ``pretrained=True`` and more or fewer than 3 input bands, timm adapts the first convolution
    by repeating or summing the RGB filters.

    Raises:
        ConfigError: If timm knows no model by that name.
        PretrainedWeightsError: If pretrained weights are asked for but cannot be downloaded.
    """
    if backbone not in timm.list_models():
        raise ConfigError(f"model.backbone: timm has no model {backbone!r} (see timm.list_models())")
    try:
        return timm.create_model(
            backbone, pretrained=pretrained, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate
        )
    except Exception as e:
        if not pretrained:
            raise
        reason = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}" if str(e) else type(e).__name__
        raise PretrainedWeightsError(
            f"could not fetch pretrained weights for {backbone!r} ({reason}); offline, use "
            "--set model.pretrained=false or place the weights in the Hugging Face cache (HF_HOME)"
        ) from None


def head_and_backbone_parameters(
    model: nn.Module,
) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
    """Split a timm model's named parameters into the classifier head and everything else."""
    head_ids = {id(p) for p in model.get_classifier().parameters()}  # type: ignore[operator]
    named = list(model.named_parameters())
    return [(n, p) for n, p in named if id(p) in head_ids], [(n, p) for n, p in named if id(p) not in head_ids]


def split_weight_decay(named: list[tuple[str, nn.Parameter]]) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Split parameters into those that take weight decay (weights) and those that do not (biases, norms)."""
    decay = [p for n, p in named if p.ndim > 1 and not n.endswith(".bias")]
    no_decay = [p for n, p in named if not (p.ndim > 1 and not n.endswith(".bias"))]
    return decay, no_decay
