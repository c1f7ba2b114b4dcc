"""Multiply-accumulates of one ONNX node, from its shapes: the one rule for every MAC figure.

Used by reid-bench's FP32-limit column (``edgereid.benchmarks.limits.count_onnx_macs``) and by the
X3 BPU placement report's MAC shares (``edgereid.x3.placement``). Counts convolutions (output
elements x Cin/groups x kernel area) and matrix products (output elements x inner dimension);
every other op is negligible for ReID CNNs and counts 0. Needs only numpy.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np

# op type -> index of the weight input (whose shape is (Cout, Cin/groups, kh, kw))
CONV_WEIGHT_INPUT = {"Conv": 1, "ConvTranspose": 1, "ConvInteger": 1, "QLinearConv": 3}
MATMUL_OPS = ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul")

Shape = Optional[Sequence[int]]


def node_macs(op_type: str, attrs: Dict[str, Any], in_shapes: Sequence[Shape], out_shape: Shape) -> int:
    """MACs of one node; 0 when a needed shape is unknown or the op is not a conv / matmul.

    Args:
        op_type: the node's op type.
        attrs: its attributes (name -> value; only Gemm's ``transA`` is read).
        in_shapes: shape of each input in order (None where unknown).
        out_shape: shape of the first output (None where unknown).
    """
    if not out_shape or any(int(d) <= 0 for d in out_shape):
        return 0
    if op_type in CONV_WEIGHT_INPUT:
        idx = CONV_WEIGHT_INPUT[op_type]
        w = in_shapes[idx] if idx < len(in_shapes) else None
        if not w:
            return 0
        if op_type == "ConvTranspose":  # every input element is spread over Cout/groups x kernel
            x = in_shapes[0]
            return int(np.prod(x)) * int(w[1]) * int(np.prod(w[2:])) if x else 0
        return int(np.prod(out_shape)) * int(np.prod(w[1:]))
    if op_type in MATMUL_OPS:
        a = in_shapes[0] if in_shapes else None
        if not a:
            return 0
        inner = a[-2] if op_type == "Gemm" and attrs.get("transA", 0) else a[-1]
        return int(np.prod(out_shape)) * int(inner)
    return 0
