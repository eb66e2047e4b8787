"""A U-Net on any timm encoder (through segmentation-models-pytorch), so cluster runs start from pretrained weights."""

from __future__ import annotations

import segmentation_models_pytorch as smp
from torch import Tensor, nn

from satpipe.errors import PretrainedWeightsError
from satpipe.models._registry import register_model
from satpipe.models.classifier import check_backbone


class TimmUNet(nn.Module):
    """segmentation-models-pytorch's U-Net with the encoder/decoder split the other networks expose.

    ``forward_features`` and ``forward_head`` let semi-supervised training perturb the encoder's features.
    """

    def __init__(self, net: smp.Unet) -> None:
        super().__init__()
        self.net = net

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The encoder's feature maps, finest first."""
        return self.net.encoder(x)

    def forward_head(self, features: list[Tensor]) -> Tensor:
        """Logits from the encoder's feature maps."""
        return self.net.segmentation_head(self.net.decoder(features))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def unet_timm(
    in_channels: int = 4, out_channels: int = 1, encoder: str = "resnet18", pretrained: bool = False
) -> nn.Module:
    """U-Net decoder on the timm model ``encoder`` (ImageNet weights when ``pretrained``; any band count).

    Input sides must be multiples of 32. With more or fewer than 3 bands and pretrained weights, the first
    convolution is adapted from the RGB filters (as timm does for classifiers).

    Raises:
        ConfigError: If timm has no such model.
        PretrainedWeightsError: If the weights are asked for but can be neither downloaded nor found cached.
    """
    check_backbone(encoder, pretrained=pretrained)  # offline, a clear error now rather than a hub client's retries
    try:
        net = smp.Unet(
            encoder_name=f"tu-{encoder}",
            encoder_weights="imagenet" if pretrained else None,
            in_channels=in_channels,
            classes=out_channels,
        )
    except Exception as e:
        if not pretrained:
            raise
        raise PretrainedWeightsError(
            f"could not fetch pretrained weights for encoder {encoder!r} ({type(e).__name__}); offline, use "
            "--set model.pretrained=false or place the weights in the Hugging Face cache (HF_HOME)"
        ) from None
    return TimmUNet(net)
