"""Bring an opset 12-17 graph down to opset 11 (hb_mapper for the X3 reads opset 10/11 only).

ONNX's version converter has no down-adapters for most ops (e.g. BatchNormalization 15 -> 11),
yet between 11 and 17 the operators an X3 graph uses changed only in how they take a few
arguments: axes / split moved from attributes to inputs (opset 13), BatchNormalization and
Reshape grew attributes whose default is the old behaviour (14). Those are moved back here; an
op whose meaning changed (Softmax's axis in 13) is taken only where both meanings agree.
Anything else is left to ``onnx.checker`` at opset 11, which names what does not fit.
"""

from __future__ import annotations

import numpy as np

from edgereid.errors import InputError

# Ops whose inputs/attributes are the same at 11 as in 12..17 for float tensors.
SAME_AT_11 = frozenset(
    """Abs Add AveragePool Cast Clip Concat Constant Conv ConvTranspose Div Dropout Equal Erf Exp
    Expand Flatten Gather Gemm GlobalAveragePool GlobalMaxPool Greater HardSigmoid Identity
    LeakyRelu Less LpNormalization MatMul Max MaxPool Min Mul Neg Pad Pow PRelu Reciprocal
    ReduceL2 ReduceMax ReduceMean ReduceMin ReduceProd Relu Shape Sigmoid Slice Sqrt Sub Sum
    Tanh Tile Transpose Where Resize""".split()
)
# Opset-13 ops whose axes/split input goes back to an attribute.
INPUT_TO_ATTR = {"Squeeze": "axes", "Unsqueeze": "axes", "ReduceSum": "axes", "Split": "split"}


def downgrade_to_opset11(model) -> None:
    """Rewrite ``model`` (opset 11..17) in place so that it validates at opset 11."""
    import onnx
    from onnx import numpy_helper

    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    for node in model.graph.node:
        op = node.op_type
        if op == "BatchNormalization":
            _drop_attr(node, "training_mode", must_be=0)
            del node.output[1:]
        elif op == "Reshape":
            _drop_attr(node, "allowzero", must_be=0)
        elif op in INPUT_TO_ATTR and len(node.input) > 1 and node.input[1]:
            value = consts.get(node.input[1])
            if value is None:
                raise InputError(
                    f"node {node.name!r} ({op}) has a non-constant {INPUT_TO_ATTR[op]}; opset 11 needs a constant."
                )
            node.attribute.append(onnx.helper.make_attribute(INPUT_TO_ATTR[op], [int(v) for v in value.reshape(-1)]))
            del node.input[1]
        elif op == "Softmax":
            _check_softmax(node, model)
        elif op == "Resize" and len(node.input) > 1 and node.input[1] == "":
            empty = numpy_helper.from_array(np.zeros((0,), np.float32), node.name + "_roi")
            model.graph.initializer.append(empty)
            node.input[1] = empty.name
        elif op not in SAME_AT_11 and op not in INPUT_TO_ATTR and op not in ("Softmax",):
            pass  # the checker at opset 11 decides and names the node
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = 11


def _drop_attr(node, name: str, must_be: int) -> None:
    import onnx

    for a in list(node.attribute):
        if a.name == name:
            if onnx.helper.get_attribute_value(a) != must_be:
                raise InputError(
                    f"node {node.name!r} ({node.op_type}) uses {name}={must_be ^ 1}, which opset 11 cannot express."
                )
            node.attribute.remove(a)


def _check_softmax(node, model) -> None:
    import onnx

    axis = -1
    for a in node.attribute:
        if a.name == "axis":
            axis = onnx.helper.get_attribute_value(a)
    if axis != -1:
        raise InputError(
            f"node {node.name!r} (Softmax over axis {axis}): Softmax changed meaning in opset 13 and "
            "cannot be written at opset 11 except over the last axis."
        )
