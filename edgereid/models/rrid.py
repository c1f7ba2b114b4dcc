"""RRID (Park & Ham, "Relation Network for Person Re-identification", AAAI 2020) in PyTorch.

Our own code for the official ``RelationModel(last_conv_stride=1, num_stripes=6,
local_conv_out_channels=256)`` at 384x128, with exactly the official state_dict key names and
shapes (``base.*`` ResNet-50, ``local_6_conv_list.*`` ... ``global_2_pooling_conv_list.*``, and
the training-only ``fc_*_list.*`` classifiers), so official checkpoints load strictly.

What the network computes (ResNet-50 map ``feat``: (N, 2048, 24, 8) at 384x128, last stride 1):

- Three part partitions of ``feat``'s height: 6, 4 and 2 horizontal stripes, each max-pooled to
  (N, 2048, 1, 1).
- One-vs-rest relation per stripe ``i``: ``local = local_conv[i](p_i)``, ``rest =
  rest_conv[i](mean of the other stripes)``, ``out_i = relation_conv[i](cat(local, rest)) +
  local`` (each conv is 1x1 conv -> BN -> ReLU, 256 channels).
- Global contrastive pooling (GCP) per partition: ``gmax = max over feat``, ``grest = (sum of
  stripes - gmax) / (n - 1)``; ``m = global_max_conv(gmax)``, ``r = global_rest_conv(grest)``,
  ``out = m + global_pooling_conv(cat(m, r))``.

``forward`` returns the 15 outputs (6 + 4 + 2 stripes, then the 6-, 4-, 2-stripe GCP features),
each 256-d, concatenated: (N, 3840). The official Evaluate.py feature is the mean of the features
of the input and of its horizontal flip, L2-normalised; ``flip_average=True`` returns exactly that.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

from edgereid.errors import InputError

PARTITIONS = (6, 4, 2)  # stripe counts; the first is the official ``num_stripes``
LOCAL_CHANNELS = 256  # official ``local_conv_out_channels``
FEATURE_DIM = (sum(PARTITIONS) + len(PARTITIONS)) * LOCAL_CHANNELS  # 15 x 256 = 3840
BACKBONE_STRIDE = 16  # ResNet-50 with last stride 1

# The 15 chunks of the 3840-d output, in order; chunk k is out[:, 256*k : 256*(k+1)].
FEATURE_LAYOUT = tuple(
    [f"part6_stripe{i}" for i in range(6)]
    + [f"part4_stripe{i}" for i in range(4)]
    + [f"part2_stripe{i}" for i in range(2)]
    + ["global6_gcp", "global4_gcp", "global2_gcp"]
)

# The official attribute names, in the official registration order.
_CONV_LISTS = (
    ("local_{n}_conv_list", 2048, "per_stripe"),
    ("rest_{n}_conv_list", 2048, "per_stripe"),
    ("relation_{n}_conv_list", 2 * LOCAL_CHANNELS, "per_stripe"),
    ("global_{n}_max_conv_list", 2048, "one"),
    ("global_{n}_rest_conv_list", 2048, "one"),
    ("global_{n}_pooling_conv_list", 2 * LOCAL_CHANNELS, "one"),
)
_CLASSIFIER_LISTS = (
    ("fc_local_{n}_list", "per_stripe"),
    ("fc_rest_{n}_list", "per_stripe"),
    ("fc_local_rest_{n}_list", "per_stripe"),
    ("fc_global_{n}_list", "one"),
    ("fc_global_max_{n}_list", "one"),
    ("fc_global_rest_{n}_list", "one"),
)
TRAINING_ONLY_PREFIXES = tuple(name.format(n=n) + "." for name, _ in _CLASSIFIER_LISTS for n in PARTITIONS)


@functools.lru_cache(maxsize=None)
def rrid_nn() -> SimpleNamespace:
    """Build (once) and return the torch class ``RelationModel`` (torch imported lazily)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from edgereid.models.backbone import resnet_nn

    def conv_bn_relu(in_channels: int) -> nn.Sequential:
        """Official ``Sequential(Conv2d 1x1, BatchNorm2d, ReLU)``: keys ``.0.*`` and ``.1.*``."""
        return nn.Sequential(
            nn.Conv2d(in_channels, LOCAL_CHANNELS, 1),
            nn.BatchNorm2d(LOCAL_CHANNELS),
            nn.ReLU(inplace=True),
        )

    def stripe_max(feat, n: int) -> list:
        """Max-pool each of ``n`` horizontal stripes of ``feat`` (N, C, H, W) -> n x (N, C, 1, 1)."""
        h = feat.size(2) // n  # official int(H / n): a remainder is dropped at the bottom
        return [F.max_pool2d(feat[:, :, i * h : (i + 1) * h, :], (h, feat.size(3))) for i in range(n)]

    def mean_of_others(stripes: list, i: int):
        """One-vs-rest input for stripe i: the other stripes' mean, summed in the official order."""
        n = len(stripes)
        total = stripes[(i + 1) % n]
        for j in range(2, n):
            total = total + stripes[(i + j) % n]
        return total / (n - 1)

    class RelationModel(nn.Module):
        """RRID feature extractor: (N, 3, H, W) float -> (N, 3840) raw features.

        Args:
            flip_average: return the official evaluation feature instead: L2-normalised mean of the
                features of ``x`` and ``flip(x, width)``.
            height, width: input size (multiple of 96 x 16 keeps every stripe whole; the official 384x128).
            num_classes: > 0 adds the official training classifiers (``fc_*_list``, never used here).
        """

        TRAINING_ONLY_PREFIXES = TRAINING_ONLY_PREFIXES

        def __init__(self, flip_average: bool = False, height: int = 384, width: int = 128,
                     num_classes: int = 0) -> None:  # fmt: skip
            super().__init__()
            self.base = resnet_nn().ResNet50Body(last_stride=1)
            for name, in_channels, kind in _CONV_LISTS:
                for n in PARTITIONS:
                    count = n if kind == "per_stripe" else 1
                    self.add_module(name.format(n=n), nn.ModuleList(conv_bn_relu(in_channels) for _ in range(count)))
            if num_classes > 0:
                for name, kind in _CLASSIFIER_LISTS:
                    for n in PARTITIONS:
                        count = n if kind == "per_stripe" else 1
                        fcs = nn.ModuleList(nn.Linear(LOCAL_CHANNELS, num_classes) for _ in range(count))
                        self.add_module(name.format(n=n), fcs)
            self.flip_average = flip_average
            self.input_size = (height, width)
            self.num_classes = num_classes

        def partition(self, feat, n: int) -> list:
            """The n one-vs-rest stripe features and the GCP feature of one partition, each (N, 256)."""
            stripes = stripe_max(feat, n)
            outputs = []
            for i in range(n):
                local = getattr(self, f"local_{n}_conv_list")[i](stripes[i])
                rest = getattr(self, f"rest_{n}_conv_list")[i](mean_of_others(stripes, i))
                relation = getattr(self, f"relation_{n}_conv_list")[i](torch.cat((local, rest), 1))
                outputs.append((relation + local).flatten(1))
            gmax = F.max_pool2d(feat, (feat.size(2), feat.size(3)))
            total = stripes[0]
            for stripe in stripes[1:]:
                total = total + stripe
            grest = (total - gmax) / (n - 1)
            gmax = getattr(self, f"global_{n}_max_conv_list")[0](gmax)
            grest = getattr(self, f"global_{n}_rest_conv_list")[0](grest)
            pooled = getattr(self, f"global_{n}_pooling_conv_list")[0](torch.cat((gmax, grest), 1))
            return outputs, (gmax + pooled).flatten(1)

        def features(self, x):
            """Raw official ``final_feat_list`` concatenated: (N, 3, H, W) -> (N, 3840)."""
            feat = self.base(x)
            parts, globals_ = [], []
            for n in PARTITIONS:
                stripes, gcp = self.partition(feat, n)
                parts += stripes
                globals_.append(gcp)
            return torch.cat(parts + globals_, 1)

        def forward(self, x):
            if not self.flip_average:
                return self.features(x)
            both = self.features(torch.cat((x, torch.flip(x, [3])), 0))
            n = x.size(0)
            return F.normalize((both[:n] + both[n:]) / 2, p=2, dim=1)

    return SimpleNamespace(RelationModel=RelationModel)


def build_rrid(flip_average: bool = False, height: int = 384, width: int = 128, num_classes: int = 0):
    """Build RRID (untrained weights from the current torch seed), in eval mode.

    Args:
        flip_average: forward returns the official Evaluate.py feature ((f(x) + f(flip x)) / 2,
            L2-normalised) instead of the raw 3840-d concatenation.
        height, width: input size in pixels; height must be a multiple of 96 (6 whole stripes of
            the /16 feature map), width a multiple of 16. Official: 384 x 128.
        num_classes: > 0 adds the official training classifiers (their keys then load too).

    Raises:
        InputError: a size the official stripe layout cannot split.
    """
    if height <= 0 or height % (BACKBONE_STRIDE * PARTITIONS[0]) or width <= 0 or width % BACKBONE_STRIDE:
        raise InputError(
            f"RRID input {height}x{width}: expected height a multiple of {BACKBONE_STRIDE * PARTITIONS[0]} "
            f"and width a multiple of {BACKBONE_STRIDE} (official 384x128)."
        )
    if num_classes < 0:
        raise InputError(f"num_classes must be >= 0, got {num_classes}.")
    model = rrid_nn().RelationModel(flip_average, height, width, num_classes)
    return model.eval()


__all__ = ["FEATURE_DIM", "FEATURE_LAYOUT", "PARTITIONS", "TRAINING_ONLY_PREFIXES", "build_rrid", "rrid_nn"]
