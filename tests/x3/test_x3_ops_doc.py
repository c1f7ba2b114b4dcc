"""Each X3 rule against the row of Horizon's document it comes from.

Document: HorizonRDK/rdk_x3_doc ``docs/toolchain_development/intermediate/supported_op_list.md``,
section "RDK X3支持的ONNX算子列表" (read 2026-12 at commit cacb6e6). Every case names its row and
builds the smallest graph on each side of the row's limit; the expected device is the document's.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.x3.ops import BPU_RULES, CPU_RULES
from edgereid.x3.placement import placement_report

F = np.float32


def _place(builder, op, x_shape, extra=(), opset=11, **attrs):
    """Placement of a single ``op`` node on input ``x`` plus ``extra`` inputs (arrays -> constants,
    'x' -> the input again, a tuple shape -> the output of a Relu over a Slice of x)."""
    ins = ["x"]
    for e in extra:
        ins.append(e if isinstance(e, str) else builder.const(np.asarray(e)))
    out = builder.node(op, ins, **attrs)
    rep = placement_report(builder.model(x_shape, out, None, opset=opset))
    return rep["nodes"][-1]


CASES = [
    # (document row, op, input shape, extra inputs, attrs, expected device)
    ("Tanh: 1CHW, C*H*W <= 8192", "Tanh", (1, 2, 64, 64), (), {}, "bpu"),
    ("Tanh: 1CHW, C*H*W <= 8192", "Tanh", (1, 3, 64, 64), (), {}, "cpu"),
    ("Sqrt: 1CHW, C*H*W <= 8192", "Sqrt", (1, 8, 32, 32), (), {}, "bpu"),
    ("Sqrt: 1CHW, C*H*W <= 8192", "Sqrt", (1, 9, 32, 32), (), {}, "cpu"),
    ("Sigmoid: min(8W4C, 32C) <= 8192", "Sigmoid", (1, 2048, 1, 1), (), {}, "bpu"),  # 32C: 2048
    ("Sigmoid: min(8W4C, 32C) <= 8192", "Sigmoid", (1, 1, 2048, 1), (), {}, "cpu"),  # 16384 / 65536
    ("Div: two feature maps", "Div", (1, 4, 6, 6), ("x",), {}, "bpu"),
    ("Div: no constant input", "Div", (1, 4, 6, 6), (np.full((1, 4, 1, 1), 2, F),), {}, "cpu"),
    ("Exp: BPU", "Exp", (1, 4, 6, 6), (), {}, "bpu"),
    ("Pow: exponent a single value", "Pow", (1, 4, 6, 6), (np.array([2.0], F),), {}, "bpu"),
    ("Pow: exponent a single value", "Pow", (1, 4, 6, 6), (np.full((1, 4, 1, 1), 2, F),), {}, "cpu"),
    ("Mul: 1xCxHxW x 1xCxHxW", "Mul", (1, 4, 6, 6), ("x",), {}, "bpu"),
    ("Mul: C <= 2048", "Mul", (1, 2049, 2, 2), ("x",), {}, "cpu"),
    ("Add: NCHW + NCHW", "Add", (1, 4, 6, 6), ("x",), {}, "bpu"),
    ("Add: NC11 only between ops' outputs", "Add", (1, 4, 6, 6), (np.ones((1, 4, 1, 1), F),), {}, "cpu"),
    ("Sub: CPU", "Sub", (1, 4, 6, 6), ("x",), {}, "cpu"),
    ("ReduceMean: axes [2, 3]", "ReduceMean", (1, 4, 6, 6), (), {"axes": [2, 3]}, "bpu"),
    ("ReduceMean: axes [2, 3]", "ReduceMean", (1, 4, 6, 6), (), {"axes": [1]}, "cpu"),
    ("Concat: C <= 2048", "Concat", (1, 1024, 2, 2), ("x",), {"axis": 1}, "bpu"),
    ("Concat: C <= 2048", "Concat", (1, 1025, 2, 2), ("x",), {"axis": 1}, "cpu"),
    ("Softmax: CPU by default", "Softmax", (1, 4, 6, 6), (), {"axis": 1}, "cpu"),
    ("Reshape: CPU", "Reshape", (1, 4, 6, 6), (np.array([1, 4, 36], np.int64),), {}, "cpu"),
    ("Transpose: CPU", "Transpose", (1, 4, 6, 6), (), {"perm": [0, 2, 3, 1]}, "cpu"),
    ("GlobalAveragePool: H*W <= 8192", "GlobalAveragePool", (1, 2, 128, 64), (), {}, "bpu"),
    ("GlobalAveragePool: H*W <= 8192", "GlobalAveragePool", (1, 2, 128, 65), (), {}, "cpu"),
    ("MaxPool: kernel <= 64x64", "MaxPool", (1, 2, 64, 8), (), {"kernel_shape": [64, 8]}, "bpu"),
    ("AveragePool: kernel <= 7x7", "AveragePool", (1, 2, 16, 8), (), {"kernel_shape": [8, 8]}, "cpu"),
    ("DepthToSpace: blocksize 2", "DepthToSpace", (1, 8, 4, 4), (), {"blocksize": 2}, "bpu"),
    ("DepthToSpace: blocksize 2", "DepthToSpace", (1, 16, 4, 4), (), {"blocksize": 4}, "cpu"),
    ("ArgMax: axis 1, C <= 64", "ArgMax", (1, 64, 4, 4), (), {"axis": 1}, "bpu"),
    ("ArgMax: axis 1, C <= 64", "ArgMax", (1, 65, 4, 4), (), {"axis": 1}, "cpu"),
    ("Split: axis C, H or W", "Split", (1, 4, 4, 4), (), {"axis": 1}, "bpu"),
]


@pytest.mark.parametrize("row, op, shape, extra, attrs, device", CASES, ids=[f"{c[0]}|{c[5]}" for c in CASES])
def test_rule_follows_document_row(builder, row, op, shape, extra, attrs, device):
    node = _place(builder, op, shape, extra, **attrs)
    assert node["device"] == device, node
    rule = BPU_RULES.get(op) or CPU_RULES[op]
    assert "supported_op_list.md" in node["doc"] and f"row {op}" in node["doc"]
    assert rule.doc and rule.doc in node["doc"]


@pytest.mark.parametrize(
    "cin, k, device, reason",
    [
        (3640, 3, "bpu", ""),  # 3*3*3640 = 32760 <= 32768, plain conv C <= 4096
        (3642, 3, "cpu", "kernel HxWxC 3x3x3642 = 32778 > 32768"),
        (4096, 1, "bpu", ""),
        (4097, 1, "cpu", "channels per group 4097 > 4096"),
    ],
)
def test_conv_limits(builder, cin, k, device, reason):
    b = builder
    out = b.node("Conv", ["x", b.weight(8, cin, k, k, scale=0.01)], pads=[k // 2] * 4)
    node = placement_report(b.model((1, cin, 2, 2), out, None))["nodes"][0]
    assert node["device"] == device and reason in node["reason"]


@pytest.mark.parametrize("c, device", [(16384, "bpu"), (16385, "cpu")])
def test_gemm_on_a_vector_allows_16384_channels(builder, c, device):
    """Gemm row: H = W = 1 -> C <= 16384 (we capped at 2048 before)."""
    b = builder
    out = b.node("Gemm", ["x", b.weight(4, c, scale=0.01)], transB=1)
    assert placement_report(b.model((1, c), out, None))["nodes"][0]["device"] == device


@pytest.mark.parametrize(
    "a, b, a_const, b_const, device",
    [
        ((1, 1, 32, 2048), (2048, 256), False, True, "bpu"),  # 1xBxMxK x KxN, B = 1
        ((1, 32, 2048), (2048, 256), False, True, "bpu"),  # BxMxK x KxN
        ((1, 2, 256, 2048), (1, 1, 2048, 64), True, False, "bpu"),  # weight first, B = 2 > 1
        ((1, 1, 256, 2048), (1, 1, 2048, 64), True, False, "cpu"),  # weight first needs B > 1
        ((1, 1, 256, 64), (1, 1, 64, 2048), False, False, "bpu"),  # two feature maps, 1x1xKxN
        ((1, 256, 64), (1, 64, 2048), False, False, "cpu"),  # rank 3 feature maps: not listed
        ((1, 4, 8, 16), (1, 4, 16, 8), False, False, "cpu"),  # right side must be 1x1xKxN
    ],
)
def test_matmul_forms(builder, a, b, a_const, b_const, device):
    """MatMul row: the listed forms for feature x weight, weight x feature and two feature maps."""
    bl = builder
    # the input x is the first feature map; a second feature map is Relu(constant)
    first = bl.weight(*a, scale=0.01) if a_const else "x"
    if b_const:
        second = bl.weight(*b, scale=0.01)
    elif a_const:
        second = "x"
    else:
        second = bl.node("Relu", [bl.weight(*b, scale=0.01)])
    mm = bl.node("MatMul", [first, second])
    rep = placement_report(bl.model(b if a_const else a, mm, None))
    node = [n for n in rep["nodes"] if n["op_type"] == "MatMul"][0]
    assert node["device"] == device, node
