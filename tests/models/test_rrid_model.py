"""RRID: official key layout, forward against an independent transcription, flip averaging."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from edgereid.errors import InputError
from edgereid.models.rrid import FEATURE_DIM, FEATURE_LAYOUT, TRAINING_ONLY_PREFIXES, build_rrid

# The official RelationModel's module lists (attribute, count, conv input channels), in the order
# its __init__ registers them (Relation_final_ver_last_multi_scale_large_losses.py, read by hand).
OFFICIAL_CONV_LISTS = [
    *[(f"local_{n}_conv_list", n, 2048) for n in (6, 4, 2)],
    *[(f"rest_{n}_conv_list", n, 2048) for n in (6, 4, 2)],
    *[(f"relation_{n}_conv_list", n, 512) for n in (6, 4, 2)],
    *[(f"global_{n}_max_conv_list", 1, 2048) for n in (6, 4, 2)],
    *[(f"global_{n}_rest_conv_list", 1, 2048) for n in (6, 4, 2)],
    *[(f"global_{n}_pooling_conv_list", 1, 512) for n in (6, 4, 2)],
]
OFFICIAL_FC_LISTS = [
    *[(f"fc_local_{n}_list", n) for n in (6, 4, 2)],
    *[(f"fc_rest_{n}_list", n) for n in (6, 4, 2)],
    *[(f"fc_local_rest_{n}_list", n) for n in (6, 4, 2)],
    *[(f"fc_global_{n}_list", 1) for n in (6, 4, 2)],
    *[(f"fc_global_max_{n}_list", 1) for n in (6, 4, 2)],
    *[(f"fc_global_rest_{n}_list", 1) for n in (6, 4, 2)],
]
NUM_CLASSES = 3


def official_layout(num_classes: int) -> list[tuple[str, tuple[int, ...]]]:
    """Official (key, shape) list: torchvision's ResNet-50 keys (the same layout as RRID's resnet.py)."""
    import torchvision

    base = torchvision.models.resnet50(weights=None).state_dict()
    keys = [(f"base.{k}", tuple(v.shape)) for k, v in base.items() if not k.startswith("fc.")]
    for name, count, in_channels in OFFICIAL_CONV_LISTS:
        for i in range(count):
            keys.append((f"{name}.{i}.0.weight", (256, in_channels, 1, 1)))
            keys.append((f"{name}.{i}.0.bias", (256,)))
            for buf in ("weight", "bias", "running_mean", "running_var"):
                keys.append((f"{name}.{i}.1.{buf}", (256,)))
            keys.append((f"{name}.{i}.1.num_batches_tracked", ()))
    if num_classes:
        for name, count in OFFICIAL_FC_LISTS:
            for i in range(count):
                keys += [(f"{name}.{i}.weight", (num_classes, 256)), (f"{name}.{i}.bias", (num_classes,))]
    return keys


@pytest.fixture(scope="module")
def rrid():
    torch.manual_seed(3)
    model = build_rrid(num_classes=NUM_CLASSES)
    # Non-trivial BN statistics so that a wrong BN/ReLU order shows up in the outputs.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model


@pytest.fixture(scope="module")
def crops():
    return torch.randn(2, 3, 384, 128, generator=torch.Generator().manual_seed(0))


def reference_forward(model, x) -> list[torch.Tensor]:
    """The official forward, transcribed loop by loop; base = torchvision ResNet-50, last stride 1."""
    import torchvision

    net = torchvision.models.resnet50(weights=None)
    net.layer4[0].conv2.stride = (1, 1)
    net.layer4[0].downsample[0].stride = (1, 1)
    net.load_state_dict({k[5:]: v for k, v in model.state_dict().items() if k.startswith("base.")}, strict=False)
    net.eval()
    feat = net.layer4(net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x))))))))
    parts, globals_ = [], []
    for n in (6, 4, 2):
        h = feat.size(2) // n
        local = [F.max_pool2d(feat[:, :, i * h : (i + 1) * h, :], (h, feat.size(3))) for i in range(n)]
        gmax = F.max_pool2d(feat, (feat.size(2), feat.size(3)))
        grest = (sum(local[1:], local[0]) - gmax) / (n - 1)
        gmax = getattr(model, f"global_{n}_max_conv_list")[0](gmax)
        grest = getattr(model, f"global_{n}_rest_conv_list")[0](grest)
        pooled = getattr(model, f"global_{n}_pooling_conv_list")[0](torch.cat((gmax, grest), 1))
        globals_.append((gmax + pooled).squeeze(3).squeeze(2))
        for i in range(n):
            others = [local[(i + j) % n] for j in range(1, n)]
            rest = sum(others[1:], others[0]) / (n - 1)
            lf = getattr(model, f"local_{n}_conv_list")[i](local[i]).squeeze(3).squeeze(2)
            rf = getattr(model, f"rest_{n}_conv_list")[i](rest).squeeze(3).squeeze(2)
            rel = getattr(model, f"relation_{n}_conv_list")[i](torch.cat((lf, rf), 1).unsqueeze(2).unsqueeze(3))
            parts.append((rel + lf.unsqueeze(2).unsqueeze(3)).squeeze(3).squeeze(2))
    return parts + globals_


def test_state_dict_has_the_official_keys_and_shapes_in_order(rrid):
    ours = [(k, tuple(v.shape)) for k, v in rrid.state_dict().items()]
    assert ours == official_layout(NUM_CLASSES)


def test_default_model_has_no_classifier_and_prefixes_cover_exactly_the_classifiers(rrid):
    torch.manual_seed(0)
    plain = build_rrid()
    assert [(k, tuple(v.shape)) for k, v in plain.state_dict().items()] == official_layout(0)
    fc_keys = {k for k in rrid.state_dict() if k.startswith("fc_")}
    assert len(fc_keys) == 2 * (3 * 12 + 3 * 3)  # 45 Linear layers: weight + bias
    covered = {k for k in rrid.state_dict() if k.startswith(TRAINING_ONLY_PREFIXES)}
    assert covered == fc_keys


def test_forward_matches_official_transcription_chunk_by_chunk(rrid, crops):
    with torch.no_grad():
        ours = rrid(crops)
        expected = reference_forward(rrid, crops)
    assert ours.shape == (2, FEATURE_DIM) == (2, 3840)
    assert len(FEATURE_LAYOUT) == len(expected) == 15
    for k, chunk in enumerate(expected):
        assert torch.allclose(ours[:, 256 * k : 256 * (k + 1)], chunk, atol=1e-4, rtol=1e-4), FEATURE_LAYOUT[k]
    # The stripes really differ from each other (the slicing is not degenerate).
    assert not torch.allclose(ours[:, :256], ours[:, 256:512])


def test_flip_average_is_the_official_evaluate_feature(rrid, crops):
    with torch.no_grad():
        raw = rrid(crops)
        raw_flip = rrid(torch.flip(crops, [3]))
        rrid.flip_average = True
        try:
            averaged = rrid(crops)
        finally:
            rrid.flip_average = False
    # Evaluate.py: per chunk (f + f_flip) / 2, concatenated, then F.normalize(p=2, dim=1).
    chunks = [(raw[:, i : i + 256] + raw_flip[:, i : i + 256]) / 2 for i in range(0, 3840, 256)]
    expected = torch.cat(chunks, 1)
    expected = expected / expected.norm(dim=1, keepdim=True)
    assert averaged.shape == (2, 3840)
    assert torch.allclose(averaged, expected, atol=1e-5)
    assert torch.allclose(averaged.norm(dim=1), torch.ones(2), atol=1e-5)
    assert not torch.allclose(raw, raw_flip, atol=1e-3)  # the flip changes the raw feature


@pytest.mark.parametrize(("height", "width"), [(256, 128), (384, 100), (0, 128)])
def test_sizes_that_break_the_stripes_are_refused(height, width):
    with pytest.raises(InputError, match="multiple of 96"):
        build_rrid(height=height, width=width)
