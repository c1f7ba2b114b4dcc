"""One RGA module against a literal numpy transcription of the official RGA_Module.forward.

The transcription below repeats, op by op, the reshape / permute / cat orders of
microsoft/Relation-Aware-Global-Attention-Networks reid/models/models_utils/rga_modules.py
(numpy's reshape has torch's row-major ``view`` semantics), so any slip in our reshape orders,
in which half of the relation stack is G^T, or in BN/ReLU placement fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgereid.models.rga import rga_nn  # noqa: E402

EPS = 1e-5  # nn.BatchNorm2d default, as in the official code


def _bn(x, p, name):
    shape = (1, -1, 1, 1)
    scale = p[name + ".weight"].reshape(shape) / np.sqrt(p[name + ".running_var"].reshape(shape) + EPS)
    return (x - p[name + ".running_mean"].reshape(shape)) * scale + p[name + ".bias"].reshape(shape)


def _conv1x1(x, weight):
    return np.einsum("oi,bihw->bohw", weight[:, :, 0, 0], x)


def _cbr(x, p, name):
    """nn.Sequential(Conv2d 1x1, BatchNorm2d, ReLU) named ``name``."""
    return np.maximum(_bn(_conv1x1(x, p[name + ".0.weight"]), p, name + ".1"), 0.0)


def _w_mlp(y, p, name):
    """W_spatial / W_channel: Conv, BN, ReLU, Conv, BN."""
    hidden = np.maximum(_bn(_conv1x1(y, p[name + ".0.weight"]), p, name + ".1"), 0.0)
    return _bn(_conv1x1(hidden, p[name + ".3.weight"]), p, name + ".4")


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def official_forward(x, p, use_spatial, use_channel, inter_channel):
    """numpy transcription of the official RGA_Module.forward (float64)."""
    b, c, h, w = x.shape
    if use_spatial:
        theta_xs = _cbr(x, p, "theta_spatial")
        phi_xs = _cbr(x, p, "phi_spatial")
        theta_xs = theta_xs.reshape(b, inter_channel, -1)
        theta_xs = theta_xs.transpose(0, 2, 1)
        phi_xs = phi_xs.reshape(b, inter_channel, -1)
        gs = np.matmul(theta_xs, phi_xs)
        gs_in = gs.transpose(0, 2, 1).reshape(b, h * w, h, w)
        gs_out = gs.reshape(b, h * w, h, w)
        gs_joint = np.concatenate((gs_in, gs_out), 1)
        gs_joint = _cbr(gs_joint, p, "gg_spatial")
        g_xs = _cbr(x, p, "gx_spatial")
        g_xs = np.mean(g_xs, axis=1, keepdims=True)
        ys = np.concatenate((g_xs, gs_joint), 1)
        w_ys = _w_mlp(ys, p, "W_spatial")
        x = _sigmoid(np.broadcast_to(w_ys, x.shape)) * x
    if use_channel:
        xc = x.reshape(b, c, -1).transpose(0, 2, 1)[..., None]
        theta_xc = _cbr(xc, p, "theta_channel")[..., 0].transpose(0, 2, 1)
        phi_xc = _cbr(xc, p, "phi_channel")[..., 0]
        gc = np.matmul(theta_xc, phi_xc)
        gc_in = gc.transpose(0, 2, 1)[..., None]
        gc_out = gc[..., None]
        gc_joint = np.concatenate((gc_in, gc_out), 1)
        gc_joint = _cbr(gc_joint, p, "gg_channel")
        g_xc = _cbr(xc, p, "gx_channel")
        g_xc = np.mean(g_xc, axis=1, keepdims=True)
        yc = np.concatenate((g_xc, gc_joint), 1)
        w_yc = _w_mlp(yc, p, "W_channel").transpose(0, 2, 1, 3)
        x = _sigmoid(w_yc) * x
    return x


def _randomize(module, seed):
    """Random weights AND BN statistics, so BN placement matters (float64)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen, dtype=tensor.dtype) + 0.5)
            elif name.endswith(".weight") and tensor.dim() == 1:
                tensor.copy_(torch.rand(tensor.shape, generator=gen, dtype=tensor.dtype) + 0.5)
            elif tensor.dim() == 4:
                fan_in = tensor.shape[1]
                tensor.copy_(torch.randn(tensor.shape, generator=gen, dtype=tensor.dtype) / fan_in**0.5)
            else:
                tensor.copy_(0.3 * torch.randn(tensor.shape, generator=gen, dtype=tensor.dtype))


# 64 channels on a non-square 16x4 map: N = 64 positions, K = 8 both ways, W hidden = 9 // 8 = 1.
CHANNELS, HEIGHT, WIDTH = 64, 16, 4


@pytest.mark.parametrize(
    ("use_spatial", "use_channel"), [(True, True), (True, False), (False, True)], ids=["sc", "s", "c"]
)
@pytest.mark.parametrize("folded", [False, True], ids=["official", "folded"])
def test_module_matches_official_transcription(use_spatial, use_channel, folded):
    module = rga_nn().RGAModule(CHANNELS, HEIGHT, WIDTH, use_spatial, use_channel, folded=folded)
    module = module.double().eval()
    _randomize(module, seed=3)
    x = np.random.default_rng(5).standard_normal((2, CHANNELS, HEIGHT, WIDTH))
    params = {k: v.numpy() for k, v in module.state_dict().items()}

    expected = official_forward(x, params, use_spatial, use_channel, inter_channel=CHANNELS // 8)
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()

    assert got.shape == x.shape
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    # The gates really vary (the test would be weak if every sigmoid saturated to one value).
    gate = got / np.where(x == 0, 1, x)
    assert gate.std() > 0.01


def test_swapping_the_relation_halves_is_detected():
    """Control: the transcription tells G from G^T, so the test above can fail."""
    module = rga_nn().RGAModule(CHANNELS, HEIGHT, WIDTH, True, False).double().eval()
    _randomize(module, seed=3)
    x = np.random.default_rng(5).standard_normal((1, CHANNELS, HEIGHT, WIDTH))
    params = {k: v.numpy() for k, v in module.state_dict().items()}
    n = HEIGHT * WIDTH
    swapped = dict(params)
    weight = params["gg_spatial.0.weight"]
    swapped["gg_spatial.0.weight"] = np.concatenate((weight[:, n:], weight[:, :n]), 1)
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    assert np.abs(got - official_forward(x, swapped, True, False, CHANNELS // 8)).max() > 1e-4
