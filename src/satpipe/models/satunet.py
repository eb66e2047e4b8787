"""Sat-UNet: a U-Net whose decoder gates every skip connection with a spatial attention block.

Architecture as described for Sat-UNet (cloud segmentation with Sat-SlideMix): an encoder of five
stride-2 blocks (32, 64, 128, 256, 512 channels; no full-resolution stage) and a decoder that, at each
level, refines the previous features with a stride-1 transposed convolution, weighs the skip with a
spatial attention block, ADDS the two and upsamples with a stride-2 transposed convolution. About
9.78 M parameters for 4 input bands. Input sides must be multiples of 32.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from satpipe.models._registry import register_model

__all__ = ["SatUNet", "SpatialAttention", "satunet"]

WIDTHS = (32, 64, 128, 256, 512)


def _conv_bn_relu(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SpatialAttention(nn.Module):
    """Spatial attention block: ``x + gamma * psi(g, x) * x`` with ``gamma`` learned from zero.

    ``psi = sigmoid(BN(conv1x1(relu(BN(conv1x1(g)) + BN(conv1x1(x))))))`` has one channel, so it
    reweights every position of the skip ``x`` (C channels) using the gate ``g`` (C channels).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = channels // 2
        self.gate = nn.Sequential(nn.Conv2d(channels, inner, 1, bias=False), nn.BatchNorm2d(inner))
        self.skip = nn.Sequential(nn.Conv2d(channels, inner, 1, bias=False), nn.BatchNorm2d(inner))
        self.psi = nn.Sequential(nn.Conv2d(inner, 1, 1, bias=False), nn.BatchNorm2d(1), nn.Sigmoid())
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, g: Tensor, x: Tensor) -> Tensor:
        psi = self.psi(torch.relu(self.gate(g) + self.skip(x)))  # (B, 1, H, W)
        return x + self.gamma * psi * x


class DecoderLevel(nn.Module):
    """Refine, attend to the skip, add, and upsample by 2 (C -> C/2 channels)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.refine = nn.Sequential(
            nn.ConvTranspose2d(channels, channels, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.attention = SpatialAttention(channels)
        self.up = nn.Sequential(
            nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(channels // 2),
            nn.ReLU(inplace=True),
        )

    def forward(self, previous: Tensor, skip: Tensor) -> Tensor:
        u = self.refine(previous)
        return self.up(u + self.attention(u, skip))


class SatUNet(nn.Module):
    """Sat-UNet for ``in_channels`` bands, returning ``out_channels`` logits at the input resolution."""

    def __init__(self, in_channels: int = 4, out_channels: int = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        chans = (in_channels, *WIDTHS)
        self.encoder = nn.ModuleList(
            nn.Sequential(*_conv_bn_relu(cin, cout, stride=2), *_conv_bn_relu(cout, cout))
            for cin, cout in itertools.pairwise(chans)
        )
        self.decoder = nn.ModuleList(DecoderLevel(c) for c in reversed(WIDTHS))
        self.head = nn.Conv2d(WIDTHS[0] // 2, out_channels, 1)

    def forward_features(self, x: Tensor) -> list[Tensor]:
        """Every encoder level's output: (B, 32, H/2, W/2) ... (B, 512, H/32, W/32)."""
        features = []
        for block in self.encoder:
            x = block(x)
            features.append(x)
        return features

    def forward_head(self, features: list[Tensor]) -> Tensor:
        """Decode encoder features (as :meth:`forward_features` returns them) into logits at the input size."""
        x = features[-1]
        for level, skip in zip(self.decoder, reversed(features), strict=True):  # ... -> (B, 16, H, W)
            x = level(x, skip)
        return self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def satunet(in_channels: int = 4, out_channels: int = 1) -> SatUNet:
    """Sat-UNet as published (about 9.78 M parameters for 4 -> 1)."""
    return SatUNet(in_channels, out_channels)
