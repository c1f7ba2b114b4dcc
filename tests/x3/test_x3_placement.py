"""BPU placement report on small hand-made graphs: every count checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.x3.ops import BPU_RULES, CPU_RULES, X3_RULES
from edgereid.x3.placement import CHECKS, format_report, placement_report

DOC = "supported_op_list.md"


def test_rule_table_is_data_with_sources():
    assert set(BPU_RULES).isdisjoint(CPU_RULES)
    for rule in list(BPU_RULES.values()) + list(CPU_RULES.values()):
        assert DOC in rule.source and rule.doc, rule
        assert rule.citation().endswith(rule.doc)
        for check, _ in rule.limits:
            assert check in CHECKS, f"{rule.op_type}: unknown check {check}"
    # supported_op_list.md, RDK X3 ONNX rows, as data
    assert dict(BPU_RULES["Conv"].limits)["kernel_max"] == 7
    assert dict(BPU_RULES["Conv"].limits)["conv_channels"] == (2048, 4096)
    assert dict(BPU_RULES["Conv"].limits)["kernel_volume_max"] == 32768
    assert dict(BPU_RULES["GlobalAveragePool"].limits)["hw_max"] == 8192
    assert dict(BPU_RULES["Sigmoid"].limits)["sigmoid_aligned"] == 8192
    assert dict(BPU_RULES["ReduceMean"].limits)["reduce_axes"] == (2, 3)
    assert dict(BPU_RULES["Gemm"].limits)["gemm_channels"] == (2048, 16384)
    cpu_rows = ("Reshape", "Flatten", "Transpose", "ReduceSum", "ReduceL2", "LpNormalization")
    cpu_rows += ("Sub", "Gather", "Expand", "Softmax", "NonZero")
    assert all(op in CPU_RULES for op in cpu_rows)
    assert not X3_RULES.known("Einsum")  # CPU计算※: not integrated


def test_counts_subgraphs_and_mac_share(builder):
    b = builder
    # conv 9x9 (over the 7x7 limit -> CPU), relu (BPU), reshape (CPU), gemm (BPU), sub (CPU)
    t = b.node("Conv", ["x", b.weight(2, 3, 9, 9)], pads=[4, 4, 4, 4])
    t = b.node("Relu", [t])
    t = b.node("Conv", [t, b.weight(4, 2, 1, 1)])
    t = b.node("Reshape", [t, b.const(np.array([1, -1], np.int64))])
    t = b.node("Gemm", [t, b.weight(10, 1024)], transB=1)
    out = b.node("Sub", [t, b.const(np.ones((1, 10), np.float32))])
    rep = placement_report(b.model((1, 3, 16, 16), out, [1, 10]))
    where = {n["op_type"] + str(i): n["device"] for i, n in enumerate(rep["nodes"])}
    assert list(where.values()) == ["cpu", "bpu", "bpu", "cpu", "bpu", "cpu"]
    assert "kernel" in rep["nodes"][0]["reason"]
    assert (rep["bpu_nodes"], rep["cpu_nodes"]) == (3, 3)
    # CPU components: {conv9x9}, {reshape}, {sub}; BPU: {relu, conv1x1}, {gemm}
    assert rep["cpu_subgraphs"] == 3
    assert rep["bpu_subgraphs"] == 2
    conv9 = 2 * 16 * 16 * 3 * 81
    conv1 = 4 * 16 * 16 * 2
    gemm = 10 * 1024
    assert rep["total_macs"] == conv9 + conv1 + gemm
    assert rep["bpu_mac_share"] == pytest.approx((conv1 + gemm) / (conv9 + conv1 + gemm))
    text = format_report(rep, "t")
    assert "CPU subgraphs 3" in text and "kernel [9, 9] > 7x7" in text


@pytest.mark.parametrize(
    "op, other_shape, attrs, device",
    [
        ("Add", (1, 4, 1, 1), {}, "cpu"),  # NC11 with a constant: both inputs must come from ops
        ("Mul", (1, 4, 1, 1), {}, "bpu"),  # 1xCx1x1
        ("Mul", (1, 1, 1, 1), {}, "bpu"),  # 1x1x1x1
        ("Mul", (1, 1, 6, 6), {}, "cpu"),  # per-pixel: not a listed Mul form
        ("Mul", (1, 4, 6, 6), {}, "bpu"),
        ("Mul", (4, 1, 1), {}, "cpu"),  # not 4-D
        ("Add", (1, 1, 1, 6), {}, "cpu"),  # not a listed form
        ("Add", (6,), {}, "cpu"),
    ],
)
def test_broadcast_forms(builder, op, other_shape, attrs, device):
    b = builder
    out = b.node(op, ["x", b.const(np.ones(other_shape, np.float32))], **attrs)
    rep = placement_report(b.model((1, 4, 6, 6), out, [1, 4, 6, 6]))
    assert rep["nodes"][0]["device"] == device


@pytest.mark.parametrize(
    "axes, device",
    [([2, 3], "bpu"), ([1], "cpu"), ([-2, -1], "bpu")],
)
def test_reduce_mean_axes(builder, axes, device):
    out = builder.node("ReduceMean", ["x"], axes=axes, keepdims=1)
    rep = placement_report(builder.model((1, 4, 6, 6), out, None))
    assert rep["nodes"][0]["device"] == device


def test_size_limits(builder):
    b = builder
    s1 = b.node("Tanh", ["x"])  # 4*64*64 = 16384 > 8192 -> CPU
    g = b.node("GlobalAveragePool", [s1])  # 64*64 = 4096 <= 8192 -> BPU
    rep = placement_report(b.model((1, 4, 64, 64), g, None))
    assert [n["device"] for n in rep["nodes"]] == ["cpu", "bpu"]
    assert "C*H*W 16384 > 8192" in rep["nodes"][0]["reason"]


def test_channel_limit(builder):
    out = builder.node("Conv", ["x", builder.weight(4097, 8, 1, 1)])
    rep = placement_report(builder.model((1, 8, 2, 2), out, None))
    assert rep["nodes"][0]["device"] == "cpu" and "channels per group 4097 > 4096" in rep["nodes"][0]["reason"]


def test_unsupported_is_named(builder):
    t = builder.node("Relu", ["x"])
    out = builder.node("Einsum", [t, t], equation="nchw,nchw->nchw")
    rep = placement_report(builder.model((1, 2, 3, 3), out, None, opset=12))
    assert rep["unsupported_nodes"] == [rep["nodes"][1]["node"]]
