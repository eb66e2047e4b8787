"""Plain U-Net baselines: double 3x3 convolutions, max-pool down, transposed-convolution up, concatenated skips."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from satpipe.models._registry import register_model

__all__ = ["UNet", "unet", "unet_cloudmask", "unet_small"]


def _double_conv(cin: int, cout: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for c_in in (cin, cout):
        layers.append(nn.Conv2d(c_in, cout, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """U-Net with ``depth`` poolings; level ``k`` has ``width * 2**k`` channels, the bottleneck the most.

    Input sides must be multiples of ``2**depth``.
    """

    def __init__(
        self, in_channels: int = 4, out_channels: int = 1, width: int = 32, depth: int = 4, batch_norm: bool = True
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        widths = [width * 2**k for k in range(depth + 1)]
        self.down = nn.ModuleList(
            _double_conv(cin, cout, batch_norm)
            for cin, cout in zip([in_channels, *widths[:-2]], widths[:-1], strict=True)
        )
        self.bottleneck = _double_conv(widths[-2], widths[-1], batch_norm)
        self.up = nn.ModuleList(nn.ConvTranspose2d(w * 2, w, 2, stride=2) for w in reversed(widths[:-1]))
        self.merge = nn.ModuleList(_double_conv(w * 2, w, batch_norm) for w in reversed(widths[:-1]))
        self.head = nn.Conv2d(width, out_channels, 1)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """The skip of every level, then the bottleneck."""
        features = []
        for block in self.down:
            x = block(x)
            features.append(x)
            x = nn.functional.max_pool2d(x, 2)
        return [*features, self.bottleneck(x)]

    def forward_head(self, features: list[Tensor]) -> Tensor:
        """Decode :meth:`forward_features` into logits at the input size."""
        *skips, x = features
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def unet(in_channels: int = 4, out_channels: int = 1) -> UNet:
    """A plain U-Net baseline (32..512 channels, batch norm)."""
    return UNet(in_channels, out_channels, width=32, depth=4, batch_norm=True)


@register_model
def unet_cloudmask(in_channels: int = 9, out_channels: int = 1) -> UNet:
    """The MLCommons CloudMask reference U-Net: 32-64-128 channels and a 256 bottleneck, no batch norm."""
    return UNet(in_channels, out_channels, width=32, depth=3, batch_norm=False)


@register_model
def unet_small(in_channels: int = 4, out_channels: int = 1) -> UNet:
    """A small U-Net (16..128 channels, batch norm) for quick experiments on a CPU."""
    return UNet(in_channels, out_channels, width=16, depth=3, batch_norm=True)
