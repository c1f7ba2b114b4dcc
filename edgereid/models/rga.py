"""RGA (Relation-Aware Global Attention, CVPR 2020): ResNet-50 + four RGA modules.

Written from the official ``ResNet50_RGA_Model`` / ``RGA_Branch`` / ``RGA_Module``
(github microsoft/Relation-Aware-Global-Attention-Networks) at its defaults: 256x128 input,
last stride 1, ratios 8/8/8, 2048-d. Attribute names, and so state_dict keys and shapes, are
exactly the official ones (``backbone.rga_att1.gg_spatial.0.weight``, ``feat_bn.running_var``...),
so official checkpoints load strictly. The one interface change: ``forward(x)`` takes a tensor
(the official one takes ``[x]`` and returns ``(feat_, feat)``) and returns the after-BN feature
``feat`` (or the pooled pre-BN ``feat_`` with ``return_prebn=True``).

Export-minded choices that keep the math identical: batch-agnostic reshapes (``-1`` batch, static
sizes from the constructor), a static average-pool kernel, and broadcasting instead of
``expand_as``, so the classic ONNX exporter yields a graph with a dynamic batch axis and no
shape arithmetic. ``folded=True`` computes each relation conv without the N x N relation
matrix (:mod:`edgereid.models.rga_fold`): same parameters, same outputs, ~1.8x fewer MACs.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

from edgereid.errors import InputError
from edgereid.models.backbone import RESNET50_OUT_CHANNELS, resnet_nn

BRANCHES = {"sc": (True, True), "s": (True, False), "c": (False, True)}
FEATURE_DIM = RESNET50_OUT_CHANNELS
# Official defaults (main_imgreid.py / ResNet50_RGA_Model): scale = 8 for both the channel and
# spatial embedding ratios, d_scale = 8 for the attention MLP.
EMBED_RATIO = 8
DOWN_RATIO = 8
# Stage strides of ResNet-50 with last stride 1, for rga_att1 .. rga_att4.
_MODULE_STRIDES = (4, 8, 16, 16)
_MODULE_CHANNELS = (256, 512, 1024, 2048)


@functools.lru_cache(maxsize=None)
def rga_nn() -> SimpleNamespace:
    """Build (once) and return the torch classes ``RGAModule``, ``RGABranch``, ``ResNet50RGA``."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    from edgereid.models.rga_fold import relation_conv_folded, relation_maps

    def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    def attention_mlp(cin: int, down_ratio: int) -> nn.Sequential:
        hidden = cin // down_ratio
        return nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, 1, 1, bias=False),
            nn.BatchNorm2d(1),
        )

    class RGAModule(nn.Module):
        """One RGA module: spatial attention, then channel attention on its output.

        Args:
            in_channel: C of the feature map it gates.
            height, width: its spatial size (N_spatial = height * width positions).
            use_spatial, use_channel: which branches exist (RGA-S, RGA-C, RGA-SC).
            cha_ratio: C / K of the spatial branch's embeddings (official ``cha_ratio``).
            spa_ratio: N_spatial / K of the channel branch's embeddings (``spa_ratio``).
            down_ratio: squeeze ratio of the attention MLPs ``W_spatial`` / ``W_channel``.
            folded: compute the relation convs without the N x N matrices.
        """

        def __init__(
            self,
            in_channel: int,
            height: int,
            width: int,
            use_spatial: bool = True,
            use_channel: bool = True,
            cha_ratio: int = EMBED_RATIO,
            spa_ratio: int = EMBED_RATIO,
            down_ratio: int = DOWN_RATIO,
            folded: bool = False,
        ) -> None:
            super().__init__()
            self.in_channel = in_channel
            self.height, self.width = height, width
            self.in_spatial = height * width
            self.use_spatial, self.use_channel = use_spatial, use_channel
            self.inter_channel = in_channel // cha_ratio
            self.inter_spatial = self.in_spatial // spa_ratio
            self.folded = folded
            c, n, kc, ks = self.in_channel, self.in_spatial, self.inter_channel, self.inter_spatial
            # Registration order of the official (final) file, so state_dict order matches too.
            if use_spatial:
                self.gx_spatial = conv_bn_relu(c, kc)
            if use_channel:
                self.gx_channel = conv_bn_relu(n, ks)
            if use_spatial:
                self.gg_spatial = conv_bn_relu(2 * n, ks)
            if use_channel:
                self.gg_channel = conv_bn_relu(2 * c, kc)
            if use_spatial:
                self.W_spatial = attention_mlp(1 + ks, down_ratio)
            if use_channel:
                self.W_channel = attention_mlp(1 + kc, down_ratio)
            if use_spatial:
                self.theta_spatial = conv_bn_relu(c, kc)
                self.phi_spatial = conv_bn_relu(c, kc)
            if use_channel:
                self.theta_channel = conv_bn_relu(n, ks)
                self.phi_channel = conv_bn_relu(n, ks)

        def _relation(self, gg: nn.Sequential, theta, phi, map_shape: tuple[int, int]):
            """gg (Conv-BN-ReLU) over [G^T; G], G = theta^T phi; theta, phi (B, K, N) -> (B, C_out, *map_shape)."""
            n = map_shape[0] * map_shape[1]
            if not self.folded:
                return gg(relation_maps(theta, phi).reshape(-1, 2 * n, *map_shape))
            conv, bn, relu = gg
            out = relation_conv_folded(theta, phi, conv.weight, n)
            return relu(bn(out.reshape(-1, conv.out_channels, *map_shape)))

        def spatial(self, x):
            """Gate every position of x (B, C, H, W) by its relations to all positions."""
            kc, n = self.inter_channel, self.in_spatial
            theta = self.theta_spatial(x).reshape(-1, kc, n)
            phi = self.phi_spatial(x).reshape(-1, kc, n)
            relation = self._relation(self.gg_spatial, theta, phi, (self.height, self.width))
            g = torch.mean(self.gx_spatial(x), dim=1, keepdim=True)  # (B, 1, H, W)
            logits = self.W_spatial(torch.cat((g, relation), 1))  # (B, 1, H, W)
            return torch.sigmoid(logits) * x

        def channel(self, x):
            """Gate every channel of x (B, C, H, W) by its relations to all channels."""
            c, n, ks = self.in_channel, self.in_spatial, self.inter_spatial
            xc = x.reshape(-1, c, n).transpose(1, 2).unsqueeze(-1)  # (B, N, C, 1): positions as channels
            theta = self.theta_channel(xc).reshape(-1, ks, c)
            phi = self.phi_channel(xc).reshape(-1, ks, c)
            relation = self._relation(self.gg_channel, theta, phi, (c, 1))
            g = torch.mean(self.gx_channel(xc), dim=1, keepdim=True)  # (B, 1, C, 1)
            logits = self.W_channel(torch.cat((g, relation), 1))  # (B, 1, C, 1)
            return torch.sigmoid(logits).reshape(-1, c, 1, 1) * x

        def forward(self, x):
            if self.use_spatial:
                x = self.spatial(x)
            if self.use_channel:
                x = self.channel(x)
            return x

    class RGABranch(resnet_nn().ResNet50Body):
        """Official ``RGA_Branch``: an RGA module after each of layer1 .. layer4 (last stride 1)."""

        def __init__(self, use_spatial: bool, use_channel: bool, height: int, width: int, folded: bool):
            super().__init__(last_stride=1)
            for index, (stride, channels) in enumerate(zip(_MODULE_STRIDES, _MODULE_CHANNELS), start=1):
                module = RGAModule(channels, height // stride, width // stride, use_spatial, use_channel, folded=folded)
                self.add_module(f"rga_att{index}", module)

        def forward(self, x):
            x = self.rga_att1(self.layer1(self.stem(x)))
            x = self.rga_att2(self.layer2(x))
            x = self.rga_att3(self.layer3(x))
            return self.rga_att4(self.layer4(x))

    class ResNet50RGA(nn.Module):
        """Official ``ResNet50_RGA_Model`` in eval form: (B, 3, H, W) -> (B, 2048).

        ``forward`` returns ``feat`` (after ``feat_bn``), or ``feat_`` (average-pooled, pre-BN)
        when ``return_prebn`` is set. The training classifier ``cls`` is not built; its
        checkpoint keys are ignored at load (``TRAINING_ONLY_PREFIXES``).
        """

        TRAINING_ONLY_PREFIXES: tuple[str, ...] = ("cls.",)

        def __init__(
            self,
            branch: str = "sc",
            height: int = 256,
            width: int = 128,
            folded: bool = False,
            return_prebn: bool = False,
        ) -> None:
            super().__init__()
            use_spatial, use_channel = BRANCHES[branch]
            self.branch = branch
            self.input_size = (height, width)
            self.return_prebn = return_prebn
            self.backbone = RGABranch(use_spatial, use_channel, height, width, folded)
            self.feat_bn = nn.BatchNorm1d(FEATURE_DIM)
            # Static kernel = the whole final map (official: F.avg_pool2d(x, x.size()[2:])).
            self.pool_kernel = (height // 16, width // 16)

        @property
        def folded(self) -> bool:
            return all(m.folded for m in self.rga_modules())

        def set_folded(self, folded: bool) -> None:
            """Switch every RGA module between the official and the folded relation convs."""
            for module in self.rga_modules():
                module.folded = bool(folded)

        def rga_modules(self) -> list:
            return [m for m in self.modules() if isinstance(m, RGAModule)]

        def _check_input(self, x) -> None:
            if torch.jit.is_tracing() or torch.jit.is_scripting():
                return
            expected = (3, *self.input_size)
            if x.dim() != 4 or tuple(x.shape[1:]) != expected:
                raise InputError(
                    f"RGA-{self.branch.upper()} expects input (B, {expected[0]}, {expected[1]}, "
                    f"{expected[2]}) (its relation modules are built for one input size); received "
                    f"{tuple(x.shape)}. Resize crops with edgereid.models.preprocess_for('rga_"
                    f"{self.branch}') or build the model with height=..., width=...."
                )

        def pooled(self, x):
            """feat_: the average-pooled backbone output, (B, 2048)."""
            self._check_input(x)
            return F.avg_pool2d(self.backbone(x), self.pool_kernel).flatten(1)

        def forward(self, x):
            feat_ = self.pooled(x)
            return feat_ if self.return_prebn else self.feat_bn(feat_)

    class ResNet50RGAWithClassifier(ResNet50RGA):
        """Same, plus the training classifier ``cls`` (Linear 2048 -> num_classes, no bias), which
        is then loaded from checkpoints instead of ignored. ``forward`` still returns features."""

        TRAINING_ONLY_PREFIXES: tuple[str, ...] = ()

        def __init__(self, num_classes: int, **kwargs) -> None:
            super().__init__(**kwargs)
            self.cls = nn.Linear(FEATURE_DIM, num_classes, bias=False)

    return SimpleNamespace(
        RGAModule=RGAModule,
        RGABranch=RGABranch,
        ResNet50RGA=ResNet50RGA,
        ResNet50RGAWithClassifier=ResNet50RGAWithClassifier,
    )


def build_rga(
    branch: str = "sc",
    folded: bool = False,
    return_prebn: bool = False,
    height: int = 256,
    width: int = 128,
    num_classes: int | None = None,
):
    """Build an eval-mode RGA model with the official key layout (weights from torch's RNG).

    Args:
        branch: ``"sc"`` (RGA-SC, spatial + channel), ``"s"`` or ``"c"``.
        folded: compute relation convs without the N x N relation matrices (same outputs).
        return_prebn: return the pooled pre-BN feature ``feat_`` instead of ``feat``.
        height, width: input size; 256x128 is the official one (multiples of 16 only, since the
            RGA modules are sized from height // 4 .. height // 16).
        num_classes: also build the training classifier ``cls`` (then loaded, not ignored).

    Returns:
        ``torch.nn.Module``: (B, 3, height, width) float32 -> (B, 2048) float32.

    Raises:
        InputError: unknown branch or an input size the official layout cannot take.
    """
    if branch not in BRANCHES:
        raise InputError(f"unknown RGA branch {branch!r}; valid: {sorted(BRANCHES)} (RGA-SC is 'sc').")
    if height <= 0 or width <= 0 or height % 16 or width % 16:
        raise InputError(
            f"RGA input size must be positive multiples of 16 (official: 256x128); received {height}x{width}."
        )
    if num_classes is not None and num_classes <= 0:
        raise InputError(f"num_classes must be a positive number of training identities; received {num_classes}.")
    classes = rga_nn()
    kwargs = dict(branch=branch, height=height, width=width, folded=folded, return_prebn=return_prebn)
    if num_classes is None:
        model = classes.ResNet50RGA(**kwargs)
    else:
        model = classes.ResNet50RGAWithClassifier(num_classes, **kwargs)
    return model.eval()


__all__ = ["BRANCHES", "FEATURE_DIM", "build_rga", "rga_nn"]
