"""state_dict keys and shapes of build_rga against the official ResNet50_RGA_Model layout.

The expectations are written by hand from reading the official source (rga_model.py,
rga_branches.py, rga_modules.py at 256x128, scale 8, d_scale 8, last stride 1), not generated
by our code.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edgereid.errors import InputError  # noqa: E402
from edgereid.models.rga import build_rga  # noqa: E402

BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def official_resnet_keys() -> list[str]:
    """RGA_Branch's ResNet part: conv1, bn1, layer1..4 of Bottlenecks (3, 4, 6, 3)."""
    keys = ["backbone.conv1.weight"] + [f"backbone.bn1.{s}" for s in BN_SUFFIXES]
    for layer, blocks in enumerate((3, 4, 6, 3), start=1):
        for block in range(blocks):
            prefix = f"backbone.layer{layer}.{block}."
            for i in (1, 2, 3):
                keys.append(f"{prefix}conv{i}.weight")
                keys += [f"{prefix}bn{i}.{s}" for s in BN_SUFFIXES]
            if block == 0:
                keys.append(f"{prefix}downsample.0.weight")
                keys += [f"{prefix}downsample.1.{s}" for s in BN_SUFFIXES]
    return keys


def official_module_keys(index: int, spatial: bool, channel: bool) -> list[str]:
    """RGA_Module: conv-BN-ReLU embeddings and the two W_* MLPs (Conv, BN, ReLU, Conv, BN)."""
    parts = []
    for kind, on in (("spatial", spatial), ("channel", channel)):
        if on:
            for seq in ("theta", "phi", "gx", "gg"):
                parts.append(f"{seq}_{kind}.0.weight")
                parts += [f"{seq}_{kind}.1.{s}" for s in BN_SUFFIXES]
            parts.append(f"W_{kind}.0.weight")
            parts += [f"W_{kind}.1.{s}" for s in BN_SUFFIXES]
            parts.append(f"W_{kind}.3.weight")
            parts += [f"W_{kind}.4.{s}" for s in BN_SUFFIXES]
    return [f"backbone.rga_att{index}.{p}" for p in parts]


def official_keys(spatial: bool, channel: bool) -> set[str]:
    keys = official_resnet_keys()
    for index in (1, 2, 3, 4):
        keys += official_module_keys(index, spatial, channel)
    keys += [f"feat_bn.{s}" for s in BN_SUFFIXES]
    return set(keys)


# (key, shape) read off the official constructors: rga_att1 is RGA_Module(256, 64*32),
# rga_att4 is RGA_Module(2048, 16*8); inter = in // 8; W_* hidden = (1 + inter) // 8.
OFFICIAL_SHAPES = {
    "backbone.conv1.weight": (64, 3, 7, 7),
    "backbone.layer4.0.conv2.weight": (512, 512, 3, 3),
    "backbone.layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
    "backbone.rga_att1.theta_spatial.0.weight": (32, 256, 1, 1),
    "backbone.rga_att1.gx_channel.0.weight": (256, 2048, 1, 1),
    "backbone.rga_att1.gg_spatial.0.weight": (256, 4096, 1, 1),
    "backbone.rga_att1.gg_channel.0.weight": (32, 512, 1, 1),
    "backbone.rga_att1.W_spatial.0.weight": (32, 257, 1, 1),
    "backbone.rga_att1.W_spatial.3.weight": (1, 32, 1, 1),
    "backbone.rga_att1.W_channel.0.weight": (4, 33, 1, 1),
    "backbone.rga_att2.gg_spatial.0.weight": (64, 1024, 1, 1),
    "backbone.rga_att3.gg_channel.0.weight": (128, 2048, 1, 1),
    "backbone.rga_att4.gg_spatial.0.weight": (16, 256, 1, 1),
    "backbone.rga_att4.gg_channel.0.weight": (256, 4096, 1, 1),
    "backbone.rga_att4.theta_channel.0.weight": (16, 128, 1, 1),
    "backbone.rga_att4.W_spatial.0.weight": (2, 17, 1, 1),
    "backbone.rga_att4.W_channel.0.weight": (32, 257, 1, 1),
    "backbone.rga_att4.W_channel.4.running_var": (1,),
    "feat_bn.running_mean": (2048,),
}


@pytest.fixture(scope="module")
def meta_models():
    """Shapes and names only: build on the meta device (no memory, no init time)."""
    with torch.device("meta"):
        return {branch: build_rga(branch) for branch in ("sc", "s", "c")}


@pytest.mark.parametrize(
    ("branch", "spatial", "channel", "count"),
    [("sc", True, True, 611), ("s", True, False, 467), ("c", False, True, 467)],
)
def test_keys_equal_official_layout(meta_models, branch, spatial, channel, count):
    keys = set(meta_models[branch].state_dict())
    assert keys == official_keys(spatial, channel)
    assert len(keys) == count  # 318 ResNet + 4 modules x (72 | 36) + 5 feat_bn
    # A torch 0.4.0 checkpoint has no num_batches_tracked: 509 tensors for RGA-SC (+ cls.weight).
    if branch == "sc":
        assert len([k for k in keys if not k.endswith("num_batches_tracked")]) == 509


def test_shapes_equal_official(meta_models):
    state = meta_models["sc"].state_dict()
    got = {key: tuple(state[key].shape) for key in OFFICIAL_SHAPES}
    assert got == OFFICIAL_SHAPES


def test_state_dict_order_follows_official_registration(meta_models):
    keys = [k for k in meta_models["sc"].state_dict() if k.startswith("backbone.rga_att1.")]
    order = []
    for key in keys:
        name = key.split(".")[2]
        if name not in order:
            order.append(name)
    assert order == [
        "gx_spatial", "gx_channel", "gg_spatial", "gg_channel", "W_spatial", "W_channel",
        "theta_spatial", "phi_spatial", "theta_channel", "phi_channel",
    ]  # fmt: skip


def test_training_classifier_is_ignored_unless_built():
    with torch.device("meta"):
        plain = build_rga("sc")
        with_cls = build_rga("sc", num_classes=751)
    assert type(plain).TRAINING_ONLY_PREFIXES == ("cls.",)
    assert "cls.weight" not in plain.state_dict()
    assert type(with_cls).TRAINING_ONLY_PREFIXES == ()
    assert tuple(with_cls.state_dict()["cls.weight"].shape) == (751, 2048)  # Linear, bias=False


def test_folded_model_has_identical_state_dict(meta_models):
    with torch.device("meta"):
        folded = build_rga("sc", folded=True)
    expected = {k: tuple(v.shape) for k, v in meta_models["sc"].state_dict().items()}
    assert {k: tuple(v.shape) for k, v in folded.state_dict().items()} == expected
    assert folded.folded and not meta_models["sc"].folded


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"branch": "x"}, "unknown RGA branch 'x'"),
        ({"height": 250}, "multiples of 16"),
        ({"num_classes": 0}, "num_classes must be a positive"),
    ],
)
def test_bad_options_raise_input_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        build_rga(**kwargs)


def test_wrong_input_size_is_explained():
    with torch.device("meta"):
        model = build_rga("sc")
    with pytest.raises(InputError, match=r"expects input \(B, 3, 256, 128\).*received \(1, 3, 384, 128\)"):
        model(torch.zeros(1, 3, 384, 128, device="meta"))
