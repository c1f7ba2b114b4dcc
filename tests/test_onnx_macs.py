from __future__ import annotations

import pytest

from edgereid.onnx_macs import node_macs


@pytest.mark.parametrize(
    "op, attrs, ins, out, expected",
    [
        # 3x3 conv, 16 -> 32 channels on an 8x8 map: 32*8*8 outputs x 16*3*3
        ("Conv", {}, [[1, 16, 8, 8], [32, 16, 3, 3]], [1, 32, 8, 8], 32 * 64 * 144),
        # depthwise (groups=16): the weight's Cin/groups is 1
        ("Conv", {"group": 16}, [[1, 16, 8, 8], [16, 1, 3, 3]], [1, 16, 8, 8], 16 * 64 * 9),
        ("QLinearConv", {}, [[1, 4, 2, 2], None, None, [8, 4, 1, 1]], [1, 8, 2, 2], 8 * 4 * 4),
        # transposed conv: each of the 4*4*4 input elements spreads over Cout/groups(2) x 2x2
        ("ConvTranspose", {}, [[1, 4, 4, 4], [4, 2, 2, 2]], [1, 2, 8, 8], 64 * 2 * 4),
        ("MatMul", {}, [[2, 5, 7], [7, 3]], [2, 5, 3], 2 * 5 * 3 * 7),
        ("Gemm", {"transA": 1}, [[7, 5], [7, 3]], [5, 3], 15 * 7),
        ("Relu", {}, [[1, 3, 4, 4]], [1, 3, 4, 4], 0),
        ("Conv", {}, [[1, 16, 8, 8], None], [1, 32, 8, 8], 0),  # unknown weight shape
        ("Conv", {}, [[1, 16, 8, 8], [32, 16, 3, 3]], None, 0),  # unknown output shape
        ("MatMul", {}, [[-1, 7], [7, 3]], [-1, 3], 0),  # unresolved dynamic dim
    ],
)
def test_node_macs_worked_examples(op, attrs, ins, out, expected):
    assert node_macs(op, attrs, ins, out) == expected
