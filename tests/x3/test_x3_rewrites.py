"""Each X3 rewrite on its own small graph: it fires, the op it removes is gone, and the graph
computes the same numbers as before (to float rounding)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.x3.graph import to_opset11
from edgereid.x3.placement import placement_report
from edgereid.x3.rewrites import REWRITES, apply_rewrites


def _ops(model) -> list:
    return [n.op_type for n in model.graph.node]


def _check_equal(model, names, run, shape, rng, atol=1e-5):
    before = copy.deepcopy(model)
    counts = apply_rewrites(model, names)
    x = rng.normal(size=shape).astype(np.float32)
    a, b = run(before, x), run(model, x)
    np.testing.assert_allclose(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1), rtol=1e-5, atol=atol)
    return counts


def test_registry_knows_every_default():
    from edgereid.x3.rewrites import DEFAULT_REWRITES

    assert set(DEFAULT_REWRITES) <= set(REWRITES)
    with pytest.raises(ValueError, match="unknown X3 rewrites"):
        apply_rewrites(None, ["no_such_rewrite"])


def test_channel_mean_to_conv(builder, run, rng):
    b = builder
    t = b.node("Conv", ["x", b.weight(6, 3, 1, 1)])
    out = b.node("ReduceMean", [t], axes=[1], keepdims=1)
    model = b.model((1, 3, 5, 4), out, None)
    assert placement_report(model)["cpu_nodes"] == 1
    counts = _check_equal(model, ["channel_mean_to_conv"], run, (1, 3, 5, 4), rng)
    assert counts == {"channel_mean_to_conv": 1}
    assert _ops(model) == ["Conv", "Conv"]
    assert placement_report(model)["cpu_nodes"] == 0


def test_full_avgpool_to_gap(builder, run, rng):
    out = builder.node("AveragePool", ["x"], kernel_shape=[16, 8], strides=[16, 8])
    model = builder.model((1, 6, 16, 8), out, None)
    assert placement_report(model)["cpu_nodes"] == 1  # kernel 16x8 > 7x7
    assert _check_equal(model, ["full_avgpool_to_gap"], run, (1, 6, 16, 8), rng) == {"full_avgpool_to_gap": 1}
    assert _ops(model) == ["GlobalAveragePool"]
    assert placement_report(model)["cpu_nodes"] == 0


def test_head_sinks_to_bpu(builder, run, rng):
    """GAP -> Flatten -> Gemm -> BatchNorm1d -> ReLU: the 2-D head becomes 1x1 conv + BN + ReLU."""
    b = builder
    t = b.node("GlobalAveragePool", ["x"])
    t = b.node("Flatten", [t], axis=1)
    t = b.node("Gemm", [t, b.weight(5, 8), b.weight(5)], transB=1, alpha=0.5, beta=2.0)
    bn = [b.weight(5), b.weight(5), b.weight(5), b.const(np.abs(b.rng.normal(1, 0.2, 5)).astype(np.float32))]
    t = b.node("BatchNormalization", [t, *bn], epsilon=1e-5)
    out = b.node("Relu", [t])
    model = b.model((1, 8, 4, 4), out, [1, 5])
    assert placement_report(model)["cpu_nodes"] == 2  # Flatten, BatchNorm after a Gemm (Gemm, Relu BPU)
    names = ["sink_flatten", "fold_batchnorm", "drop_trailing_flatten"]
    counts = _check_equal(model, names, run, (1, 8, 4, 4), rng)
    assert counts == {"sink_flatten": 3, "fold_batchnorm": 1, "drop_trailing_flatten": 1}
    assert _ops(model) == ["GlobalAveragePool", "Conv", "Relu"]
    rep = placement_report(model)
    assert rep["cpu_nodes"] == 0 and rep["bpu_mac_share"] == 1.0
    assert [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim] == [1, 5, 1, 1]


def test_fold_batchnorm_into_conv(builder, run, rng):
    b = builder
    t = b.node("Conv", ["x", b.weight(4, 3, 3, 3), b.weight(4)], pads=[1, 1, 1, 1])
    var = b.const(np.abs(b.rng.normal(1, 0.3, 4)).astype(np.float32))
    out = b.node("BatchNormalization", [t, b.weight(4), b.weight(4), b.weight(4), var], epsilon=1e-3)
    model = b.model((1, 3, 6, 6), out, None)
    assert _check_equal(model, ["fold_batchnorm"], run, (1, 3, 6, 6), rng) == {"fold_batchnorm": 1}
    assert _ops(model) == ["Conv"]


def test_sub_div_const(builder, run, rng):
    b = builder
    t = b.node("Sub", ["x", b.const(np.full((1, 3, 1, 1), 0.5, np.float32))])
    out = b.node("Div", [t, b.const(np.array([[[[2.0]], [[4.0]], [[0.5]]]], np.float32))])
    model = b.model((1, 3, 4, 4), out, None)
    assert placement_report(model)["cpu_nodes"] == 2
    assert _check_equal(model, ["sub_div_const"], run, (1, 3, 4, 4), rng) == {"sub_div_const": 2}
    assert _ops(model) == ["Add", "Mul"]
    # Add of a 1xCx1x1 constant is not a BPU form (row Add: NC11 only between two ops' outputs)
    assert placement_report(model)["cpu_nodes"] == 1
    assert _check_equal(model, ["affine_to_conv"], run, (1, 3, 4, 4), rng) == {"affine_to_conv": 1}
    assert _ops(model) == ["Conv", "Mul"]
    assert placement_report(model)["cpu_nodes"] == 0


@pytest.mark.parametrize("form", ["div_reducel2", "lpnorm"])
def test_strip_l2_normalize(builder, run, rng, form):
    """The host applies L2 after the model: the rewritten output, normalised, equals the original."""
    b = builder
    t = b.node("GlobalAveragePool", ["x"])
    t = b.node("Flatten", [t], axis=1)
    if form == "lpnorm":
        out = b.node("LpNormalization", [t], p=2, axis=1)
    else:
        n = b.node("ReduceL2", [t], axes=[1], keepdims=1)
        n = b.node("Clip", [n, b.const(np.array(1e-12, np.float32)), b.const(np.array(1e9, np.float32))])
        out = b.node("Div", [t, n])
    model = b.model((1, 6, 3, 3), out, [1, 6])
    before = copy.deepcopy(model)
    assert apply_rewrites(model, ["strip_l2_normalize"]) == {"strip_l2_normalize": 1}
    assert "ReduceL2" not in _ops(model) and "LpNormalization" not in _ops(model)
    x = rng.normal(size=(1, 6, 3, 3)).astype(np.float32)
    raw = run(model, x)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), run(before, x), rtol=1e-5, atol=1e-6)


def test_opset17_graph_comes_down_to_11(builder, run, rng):
    """BatchNormalization-15, Unsqueeze/ReduceSum-13 axes inputs, Reshape-14 allowzero."""
    b = builder
    t = b.node("Conv", ["x", b.weight(4, 3, 1, 1)])
    var = b.const(np.ones(4, np.float32))
    t = b.node("BatchNormalization", [t, b.weight(4), b.weight(4), b.weight(4), var], training_mode=0)
    t = b.node("ReduceSum", [t, b.const(np.array([2, 3], np.int64))], keepdims=1)
    t = b.node("Reshape", [t, b.const(np.array([1, 4], np.int64))], allowzero=0)
    out = b.node("Unsqueeze", [t, b.const(np.array([2], np.int64))])
    model = b.model((1, 3, 4, 4), out, [1, 4, 1], opset=17)
    x = rng.normal(size=(1, 3, 4, 4)).astype(np.float32)
    expected = run(model, x)
    low = to_opset11(copy.deepcopy(model))
    assert low.opset_import[0].version == 11 and low.ir_version <= 7
    np.testing.assert_allclose(run(low, x), expected, rtol=1e-5, atol=1e-6)


def test_softmax_axis_that_changed_meaning_is_refused(builder):
    out = builder.node("Softmax", ["x"], axis=1)
    model = builder.model((1, 3, 4, 4), out, [1, 3, 4, 4], opset=13)
    with pytest.raises(InputError, match="Softmax"):
        to_opset11(model)
