"""ResNet-50 pieces with the torchvision / official RGA key names.

The official RGA code (``RGA_Branch``) and torchvision both lay ResNet-50 out as ``conv1``,
``bn1``, ``layer1`` .. ``layer4`` of ``Bottleneck`` blocks (``conv1``/``bn1`` .. ``conv3``/``bn3``,
``downsample.0`` conv + ``downsample.1`` BN), with the stride on the 3x3 conv (ResNet v1.5).
Checkpoint keys are these attribute names, so they must not change.

torch is imported lazily: the classes are built on first use by :func:`resnet_nn`.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

RESNET50_LAYERS = (3, 4, 6, 3)
RESNET50_OUT_CHANNELS = 2048


@functools.lru_cache(maxsize=None)
def resnet_nn() -> SimpleNamespace:
    """Build (once) and return the torch classes ``Bottleneck`` and ``ResNet50Body``."""
    from torch import nn

    class Bottleneck(nn.Module):
        """1x1 -> 3x3 (stride here) -> 1x1 (x4 channels), plus identity or ``downsample``."""

        expansion = 4

        def __init__(self, in_channels: int, channels: int, stride: int = 1, downsample=None) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)
            self.conv3 = nn.Conv2d(channels, channels * self.expansion, kernel_size=1, bias=False)
            self.bn3 = nn.BatchNorm2d(channels * self.expansion)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample
            self.stride = stride

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + identity)

    def make_layer(in_channels: int, channels: int, blocks: int, stride: int = 1) -> nn.Sequential:
        """One ResNet stage: ``blocks`` Bottlenecks, the first one changing stride/width."""
        downsample = None
        out_channels = channels * Bottleneck.expansion
        if stride != 1 or in_channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        layers = [Bottleneck(in_channels, channels, stride, downsample)]
        layers += [Bottleneck(out_channels, channels) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    class ResNet50Body(nn.Module):
        """ResNet-50 without pooling/fc: (N, 3, H, W) -> (N, 2048, H/16, W/16) at last_stride 1.

        Subclasses (the RGA branch) register their own modules after these, keeping the official
        key order; :meth:`stem` runs conv1/bn1/relu/maxpool.

        Args:
            last_stride: stride of ``layer4`` (1 in RGA and RRID: a 2x larger final map).
        """

        def __init__(self, last_stride: int = 1, layers=RESNET50_LAYERS) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = make_layer(64, 64, layers[0])
            self.layer2 = make_layer(256, 128, layers[1], stride=2)
            self.layer3 = make_layer(512, 256, layers[2], stride=2)
            self.layer4 = make_layer(1024, 512, layers[3], stride=last_stride)

        def stem(self, x):
            return self.maxpool(self.relu(self.bn1(self.conv1(x))))

        def forward(self, x):
            x = self.stem(x)
            return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    return SimpleNamespace(Bottleneck=Bottleneck, ResNet50Body=ResNet50Body, make_layer=make_layer)


__all__ = ["RESNET50_LAYERS", "RESNET50_OUT_CHANNELS", "resnet_nn"]
