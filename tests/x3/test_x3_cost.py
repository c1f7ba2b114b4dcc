"""The X3 cost model: the sourced rates, and per-subgraph figures counted by hand on small graphs."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.x3.cost import RESNET50_224_MACS, X3_ASSUMPTIONS
from edgereid.x3.placement import format_report, placement_report

A = X3_ASSUMPTIONS


def test_assumptions_are_the_documented_numbers():
    # beginner.md table: ResNet50 224x224, one BPU core, 17.326 ms
    assert A.bpu_macs_per_s.value == pytest.approx(RESNET50_224_MACS / 17.326e-3)
    assert 200e9 < A.bpu_macs_per_s.value < 260e9
    # YOLOv3 416: outputs 255 x 13^2, 26^2, 52^2 = 904,995 elements dequantized in 3.962 ms
    assert A.quant_ns_per_element.value == pytest.approx(3.962e6 / 904_995)
    assert A.cpu_subgraph_fixed_ms.value == 0.046
    assert A.cpu_flops_per_s == pytest.approx(1.2e9 * 6.03 / 1.44)
    for k, v in A.as_dict().items():
        assert v["source"] and v["unit"], k


def test_resnet50_macs_constant_is_our_counter():
    torch = pytest.importorskip("torch")
    from edgereid.models.backbone import resnet_nn
    from edgereid.models.macs import count_macs

    with torch.device("meta"):
        body = resnet_nn().ResNet50Body(last_stride=2)
    assert count_macs(body, (1, 3, 224, 224)) + 2048 * 1000 == RESNET50_224_MACS


def test_one_cpu_subgraph_by_hand(builder):
    """Conv (BPU) -> Reshape + Transpose (one CPU subgraph) -> MatMul with a constant (BPU)."""
    b = builder
    t = b.node("Conv", ["x", b.weight(4, 3, 1, 1)])  # (1, 4, 6, 6): 144 elements
    t = b.node("Reshape", [t, b.const(np.array([1, 1, 4, 36], np.int64))])
    t = b.node("Transpose", [t], perm=[0, 1, 3, 2])  # (1, 1, 36, 4)
    out = b.node("MatMul", [t, b.weight(4, 5)])  # (1, 1, 36, 5): 1x1xMxK x KxN on the BPU
    rep = placement_report(b.model((1, 3, 6, 6), out, None))
    assert rep["cpu_subgraphs"] == 1 and rep["bpu_subgraphs"] == 2
    (cost,) = rep["cpu_subgraph_costs"]
    assert cost["op_types"] == ["Reshape", "Transpose"]
    assert all("supported_op_list.md" in r for r in cost["rules"])
    assert (cost["bytes_bpu_to_cpu"], cost["bytes_cpu_to_bpu"], cost["elements_written"]) == (144, 144, 288)
    assert cost["flops"] == 0
    q, c = A.quant_ns_per_element.value * 1e-6, A.copy_ns_per_element.value * 1e-6
    assert cost["est_ms"]["handover"] == pytest.approx(288 * q)
    assert cost["est_ms"]["cpu"] == pytest.approx(0.046 + 288 * c)
    split = rep["latency_estimate"]
    macs = 4 * 3 * 36 + 36 * 5 * 4
    assert rep["bpu_macs"] == macs
    assert split["bpu_ms"] == pytest.approx(macs / A.bpu_macs_per_s.value * 1e3)
    assert split["handover_ms"] == pytest.approx(288 * q + 180 * q)  # + dequantizing the 180 outputs
    assert split["total_ms"] == pytest.approx(split["bpu_ms"] + split["cpu_ms"] + split["handover_ms"])
    text = format_report(rep)
    assert f"estimated X3 latency {split['total_ms']:.2f} ms" in text
    assert "144 B in / 144 B out (int8)" in text and "rows: Reshape: CPU计算; Transpose: CPU计算" in text


def test_cpu_matmul_counts_flops(builder):
    b = builder
    t = b.node("Reshape", ["x", b.const(np.array([1, 4, 36], np.int64))])
    out = b.node("MatMul", [t, b.node("Relu", [b.weight(1, 36, 5)])])  # rank-3 feature maps: CPU
    rep = placement_report(b.model((1, 4, 6, 6), out, None))
    (cost,) = [c for c in rep["cpu_subgraph_costs"] if "MatMul" in c["op_types"]]
    assert cost["flops"] == 2 * 4 * 36 * 5
    assert cost["elements_cpu_to_bpu"] == 0  # the graph output is not quantized back
