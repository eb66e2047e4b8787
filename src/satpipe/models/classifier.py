"""Scene classifiers: any timm backbone, any number of input bands."""

from __future__ import annotations

import logging
import socket
from typing import Any

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
    overlay = check_backbone(backbone, pretrained=pretrained)
    try:
        return timm.create_model(
            backbone,
            pretrained=pretrained,
            num_classes=num_classes,
            in_chans=in_chans,
            drop_rate=drop_rate,
            pretrained_cfg_overlay=overlay,
        )
    except Exception as e:
        if not pretrained:
            raise
        reason = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}" if str(e) else type(e).__name__
        raise PretrainedWeightsError(
            f"could not fetch pretrained weights for {backbone!r} ({reason}); offline, use "
            "--set model.pretrained=false or place the weights in the Hugging Face cache (HF_HOME)"
        ) from None


HUB_HOST = "huggingface.co"
#: Weight files timm publishes on the hub, in the order it prefers them.
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def hub_reachable(host: str = HUB_HOST, timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to the weights hub opens within the timeout."""
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def check_backbone(backbone: str, *, pretrained: bool) -> dict[str, Any] | None:
    """Check that timm knows the backbone and, if pretrained, that its weights can be had.

    Without network, weights already in the Hugging Face cache are used; otherwise this fails at
    once rather than after the hub client's minute of retries.

    Returns:
        timm's ``pretrained_cfg_overlay``: the cached weight file to load offline, or None.

    Raises:
        ConfigError: If timm has no such model.
        PretrainedWeightsError: If the weights are neither reachable nor cached.
    """
    if backbone not in timm.list_models():
        raise ConfigError(f"model.backbone: timm has no model {backbone!r} (see timm.list_models())")
    if not pretrained or hub_reachable():
        return None
    import huggingface_hub

    hub_id = timm.models.get_pretrained_cfg(backbone).hf_hub_id
    for filename in HUB_WEIGHT_FILES:
        path = huggingface_hub.try_to_load_from_cache(hub_id, filename) if hub_id else None
        if isinstance(path, str):
            logger.info("%s unreachable; using cached weights %s", HUB_HOST, path)
            return {"file": path}
    raise PretrainedWeightsError(
        f"cannot reach {HUB_HOST} for pretrained {backbone!r} weights and they are not in the Hugging Face cache; "
        "offline, use --set model.pretrained=false or place the weights in the cache (HF_HOME)"
    )


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
