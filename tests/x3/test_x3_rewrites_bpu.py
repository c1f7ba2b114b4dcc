"""The rewrites that put RGA's relation products and RRID's head on the BPU (edgereid.x3.rewrites_bpu):
each on its own small graph, numerically equal to the original, and what it moves off the CPU."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from edgereid.x3.placement import placement_report
from edgereid.x3.rewrites import apply_rewrites

pytest.importorskip("onnxruntime")


def _ops(model) -> list:
    return [n.op_type for n in model.graph.node]


def _equal(model, names, run, shape, rng, rtol=1e-5, atol=1e-5):
    before = copy.deepcopy(model)
    counts = apply_rewrites(model, names)
    x = rng.normal(size=shape).astype(np.float32)
    a, b = run(before, x), run(model, x)
    np.testing.assert_allclose(a.reshape(-1), b.reshape(-1), rtol=rtol, atol=atol)
    return counts


def _folded_relation(b, k: int, c: int, h: int, w: int, c_out: int, src: str = "x"):
    """The folded relation conv as torch exports it (edgereid.models.rga_fold.relation_conv_folded):
    theta/phi 1x1 convs, Reshape to (1, K, N), a = phi W_in^T, b = theta W_out^T,
    out = cat(a, b)^T @ cat(theta, phi), Reshape to (1, C_out, H, W)."""
    n = h * w
    theta4 = b.node("Relu", [b.node("Conv", [src, b.weight(k, c, 1, 1), b.weight(k)])])
    phi4 = b.node("Relu", [b.node("Conv", [src, b.weight(k, c, 1, 1), b.weight(k)])])
    to3 = b.const(np.array([1, k, n], np.int64))
    theta, phi = b.node("Reshape", [theta4, to3]), b.node("Reshape", [phi4, to3])
    a = b.node("MatMul", [phi, b.weight(n, c_out, scale=0.1)])
    bb = b.node("MatMul", [theta, b.weight(n, c_out, scale=0.1)])
    g = b.node("Transpose", [b.node("Concat", [a, bb], axis=1)], perm=[0, 2, 1])
    out = b.node("MatMul", [g, b.node("Concat", [theta, phi], axis=1)])
    return b.node("Reshape", [out, b.const(np.array([1, c_out, h, w], np.int64))])


def test_relation_product_moves_to_bpu(builder, run, rng):
    b = builder
    out = _folded_relation(b, k=4, c=8, h=6, w=4, c_out=5)
    model = b.model((1, 8, 6, 4), out, [1, 5, 6, 4])
    before = placement_report(model)
    assert before["bpu_mac_share"] < 0.9  # the three rank-3 MatMuls and two Concats run on the CPU
    counts = _equal(model, ["relation_to_bpu_matmul", "merge_reshapes"], run, (1, 8, 6, 4), rng)
    assert counts == {"relation_to_bpu_matmul": 1, "merge_reshapes": 1}
    after = placement_report(model)
    assert after["bpu_mac_share"] == 1.0
    cpu = [n["op_type"] for n in after["nodes"] if n["device"] == "cpu"]
    assert sorted(cpu) == ["Reshape", "Reshape", "Transpose"]  # f, f^T, and the map back
    assert after["cpu_subgraphs"] == 2
    # MACs: 2 x (2 C_out N 2K) for [W_in; W_out] f^T plus C_out 2K N for the product with f
    n, k, c_out = 24, 4, 5
    relation = sum(nd["macs"] for nd in after["nodes"] if nd["op_type"] == "MatMul")
    assert relation == 2 * c_out * n * 2 * k + c_out * 2 * k * n


def _attention_tail(b, rel, g, c_out: int):
    var = b.const(np.abs(b.rng.normal(1, 0.3, c_out)).astype(np.float32))
    bn = [b.weight(c_out), b.weight(c_out), b.weight(c_out), var]
    r = b.node("Relu", [b.node("BatchNormalization", [rel, *bn])])
    t = b.node("Concat", [g, r], axis=1)
    t = b.node("Relu", [b.node("Conv", [t, b.weight(3, 1 + c_out, 1, 1), b.weight(3)])])
    return b.node("Conv", [t, b.weight(1, 3, 1, 1), b.weight(1)])


def test_channel_branch_reads_x_as_rows(builder, run, rng):
    """RGA's channel branch: theta, phi, g are 1x1 convs over x viewed as (1, N, C, 1); after the
    rewrite x is only reshaped to (1, 1, C, N), f^T comes from MatMuls, and f is one Transpose."""
    b = builder
    c, h, w, k, c_out = 6, 5, 4, 3, 2  # N = 20 positions as channels, C = 6 "positions"
    t = b.node("Reshape", ["x", b.const(np.array([1, c, h * w], np.int64))])
    view = b.node("Unsqueeze", [b.node("Transpose", [t], perm=[0, 2, 1])], axes=[3])  # (1, N, C, 1)
    rel = _folded_relation(b, k=k, c=h * w, h=c, w=1, c_out=c_out, src=view)
    gx = b.node("Relu", [b.node("Conv", [view, b.weight(k, h * w, 1, 1), b.weight(k)])])
    g = b.node("Conv", [gx, b.const(np.full((1, k, 1, 1), 1.0 / k, np.float32))])  # channel mean as conv
    logits = _attention_tail(b, rel, g, c_out)  # (1, 1, C, 1)
    gate = b.node("Reshape", [b.node("Sigmoid", [logits]), b.const(np.array([1, c, 1, 1], np.int64))])
    model = b.model((1, c, h, w), b.node("Mul", [gate, "x"]), None)
    names = ["relation_to_bpu_matmul", "sigmoid_after_reshape", "merge_reshapes"]
    assert _equal(model, names, run, (1, c, h, w), rng)["relation_to_bpu_matmul"] == 1
    rep = placement_report(model)
    assert rep["bpu_mac_share"] == 1.0
    by_ops = sorted(("+".join(x["op_types"]), x["elements_bpu_to_cpu"]) for x in rep["cpu_subgraph_costs"])
    # x -> (1, 1, C, N); f^T (C x 2K+2) -> f; the gate (1, 1, 1, C) -> (1, C, 1, 1)
    assert by_ops == [("Reshape", c), ("Reshape", c * h * w), ("Transpose", c * (2 * k + 2))]


def test_relation_and_attention_tail_on_rows(builder, run, rng):
    """Relation + BatchNorm + ReLU + Concat([g, .]) + the 2-conv attention MLP + Sigmoid gate of x:
    the tail runs on the rows too; only f / f^T and the 1 x N logits cross to the CPU."""
    b = builder
    rel = _folded_relation(b, k=4, c=8, h=6, w=4, c_out=5)
    g = b.node("Conv", ["x", b.weight(1, 8, 1, 1)])  # the mean map (1, 1, H, W)
    logits = _attention_tail(b, rel, g, 5)
    out = b.node("Mul", [b.node("Sigmoid", [logits]), "x"])
    model = b.model((1, 8, 6, 4), out, None)
    names = ["relation_to_bpu_matmul", "pixel_gate_to_full", "merge_reshapes"]
    counts = _equal(model, names, run, (1, 8, 6, 4), rng)
    assert counts["relation_to_bpu_matmul"] == 1
    rep = placement_report(model)
    assert rep["bpu_mac_share"] == 1.0
    costs = rep["cpu_subgraph_costs"]
    assert sorted("+".join(c["op_types"]) for c in costs) == ["Reshape", "Reshape+Transpose"]
    # f = [theta; phi; 1; g] (2K + 2 = 10 rows of N = 24) crosses once each way plus f^T; logits: N
    by_ops = {"+".join(c["op_types"]): c for c in costs}
    assert by_ops["Reshape+Transpose"]["elements_bpu_to_cpu"] == 10 * 24
    assert by_ops["Reshape"]["elements_bpu_to_cpu"] == 24


def test_sigmoid_after_reshape(builder, run, rng):
    b = builder
    t = b.node("Conv", ["x", b.weight(1, 4, 1, 1)])  # (1, 1, 1024, 1): gate along H
    t = b.node("Sigmoid", [t])
    out = b.node("Reshape", [t, b.const(np.array([1, 1024, 1, 1], np.int64))])
    model = b.model((1, 4, 1024, 1), out, [1, 1024, 1, 1])
    assert [n["device"] for n in placement_report(model)["nodes"]] == ["bpu", "cpu", "cpu"]
    assert _equal(model, ["sigmoid_after_reshape"], run, (1, 4, 1024, 1), rng) == {"sigmoid_after_reshape": 1}
    assert _ops(model) == ["Conv", "Reshape", "Sigmoid"]
    assert [n["device"] for n in placement_report(model)["nodes"]] == ["bpu", "cpu", "bpu"]


def test_pixel_gate_spreads_over_channels(builder, run, rng):
    b = builder
    gate = b.node("Sigmoid", [b.node("Conv", ["x", b.weight(1, 6, 1, 1)])])
    out = b.node("Mul", [gate, "x"])
    model = b.model((1, 6, 5, 4), out, None)
    assert placement_report(model)["cpu_nodes"] == 1
    assert _equal(model, ["pixel_gate_to_full"], run, (1, 6, 5, 4), rng, rtol=0, atol=0) == {"pixel_gate_to_full": 1}
    assert _ops(model) == ["Conv", "Sigmoid", "Conv", "Mul"]
    assert placement_report(model)["cpu_nodes"] == 0


def test_lone_batchnorm_becomes_depthwise_conv(builder, run, rng):
    b = builder
    t = b.node("GlobalAveragePool", ["x"])
    var = b.const(np.abs(b.rng.normal(1, 0.3, 6)).astype(np.float32))
    out = b.node("BatchNormalization", [t, b.weight(6), b.weight(6), b.weight(6), var], epsilon=1e-5)
    model = b.model((1, 6, 4, 4), out, None)
    assert placement_report(model)["cpu_nodes"] == 1  # BatchNormalization row: fused into a conv only
    assert _equal(model, ["affine_to_conv"], run, (1, 6, 4, 4), rng) == {"affine_to_conv": 1}
    assert _ops(model) == ["GlobalAveragePool", "Conv"]
    assert placement_report(model)["cpu_nodes"] == 0


def test_constant_add_joins_the_conv_bias(builder, run, rng):
    b = builder
    t = b.node("Conv", ["x", b.weight(3, 3, 3, 3), b.weight(3)], pads=[1, 1, 1, 1])
    out = b.node("Add", [t, b.const(np.array([[[[1.0]], [[2.0]], [[-3.0]]]], np.float32))])
    model = b.model((1, 3, 5, 5), out, None)
    assert _equal(model, ["affine_to_conv"], run, (1, 3, 5, 5), rng) == {"affine_to_conv": 1}
    assert _ops(model) == ["Conv"]


def test_reshape_chain_is_one_reshape(builder, run, rng):
    b = builder
    t = b.node("Reshape", ["x", b.const(np.array([1, 4, 12], np.int64))])
    t = b.node("Transpose", [t], perm=[0, 2, 1])
    t = b.node("Unsqueeze", [t], axes=[3])
    out = b.node("Reshape", [t, b.const(np.array([1, 1, 12, 4], np.int64))])
    model = b.model((1, 4, 3, 4), out, None)
    assert _equal(model, ["merge_reshapes"], run, (1, 4, 3, 4), rng, rtol=0, atol=0) == {"merge_reshapes": 1}
    assert _ops(model) == ["Reshape", "Transpose", "Reshape"]


def test_rrid_head_scalar_mul_and_sub(builder, run, rng):
    """RRID's part-feature head: x / 2 (Mul by a [1] constant after sub_div_const) and a - b of maps."""
    b = builder
    g = b.node("GlobalAveragePool", ["x"])
    m = b.node("GlobalMaxPool", ["x"])
    t = b.node("Div", [b.node("Sub", [m, g]), b.const(np.array([2.0], np.float32))])
    model = b.model((1, 4, 3, 3), t, None)
    assert sorted(n["op_type"] for n in placement_report(model)["nodes"] if n["device"] == "cpu") == ["Div", "Sub"]
    counts = _equal(model, ["sub_div_const", "sub_to_add", "const_to_4d"], run, (1, 4, 3, 3), rng)
    assert counts == {"sub_div_const": 1, "sub_to_add": 1, "const_to_4d": 1}
    assert placement_report(model)["cpu_nodes"] == 0


def test_concat_of_flattened_parts(builder, run, rng):
    """15 x 256 part features (RRID): 4-D channel Concats of <= 2048 on the BPU, one last Concat."""
    b = builder
    flats = [b.node("Flatten", [b.node("Conv", ["x", b.weight(256, 8, 1, 1)])], axis=1) for _ in range(15)]
    out = b.node("Concat", flats, axis=1)
    model = b.model((1, 8, 1, 1), out, [1, 3840])
    assert placement_report(model)["cpu_subgraphs"] == 1
    counts = _equal(model, ["concat_vector_maps", "drop_trailing_flatten"], run, (1, 8, 1, 1), rng)
    assert counts == {"concat_vector_maps": 1, "drop_trailing_flatten": 1}
    rep = placement_report(model)
    cpu = [n for n in rep["nodes"] if n["device"] == "cpu"]
    assert [n["op_type"] for n in cpu] == ["Concat"] and "channels 3840 > 2048" in cpu[0]["reason"]
    assert sum(n["op_type"] == "Concat" and n["device"] == "bpu" for n in rep["nodes"]) == 2  # 2048 + 1792


@pytest.mark.parametrize("opset", [11, 17])
def test_channel_branch_relayout_is_two_nodes(builder, run, rng, opset):
    """RGA's x.reshape(C, N).transpose.unsqueeze(-1): Reshape + Transpose + Unsqueeze -> Reshape + Transpose."""
    b = builder
    t = b.node("Reshape", ["x", b.const(np.array([1, 6, 20], np.int64))])
    t = b.node("Transpose", [t], perm=[0, 2, 1])
    out = (b.node("Unsqueeze", [t, b.const(np.array([-1], np.int64))]) if opset >= 13
           else b.node("Unsqueeze", [t], axes=[3]))
    model = b.model((1, 6, 5, 4), out, None, opset=opset)
    counts = _equal(model, ["unsqueeze_before_transpose", "merge_reshapes"], run, (1, 6, 5, 4), rng, rtol=0, atol=0)
    assert counts == {"unsqueeze_before_transpose": 1, "merge_reshapes": 1}
    assert _ops(model) == ["Reshape", "Transpose"]
