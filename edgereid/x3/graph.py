"""The X3 ONNX graph: opset 11, ir_version <= 7, one static 1x3xHxW input, L2 norm left to the
host, BPU rewrites applied, every operator on the X3's BPU or CPU list.

hb_mapper (march ``bernoulli2``) reads ONNX opset 10/11 only, with a fixed 4-D batch-1 input
and at most 32 outputs (Horizon's X3 model conversion guide, see :mod:`edgereid.x3.ops`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Sequence

from edgereid.errors import InputError
from edgereid.export.onnx_tools import opset_of
from edgereid.lazy import require
from edgereid.x3.ops import ALLOWED_OPSETS, MAX_IR_VERSION, MAX_OUTPUTS, UNSUPPORTED, X3_RULES
from edgereid.x3.rewrites import DEFAULT_REWRITES, apply_rewrites

X3_OPSET = 11
X3_IR_VERSION = 6  # the IR version that goes with opset 11; hb_mapper takes <= 7


@dataclass
class X3Graphs:
    """The static plain graph (for the 'before' report) and the X3 graph (opset 11, rewritten)."""

    plain: object  # onnx.ModelProto, source opset, batch 1, simplified
    x3: object  # onnx.ModelProto, opset 11, rewritten
    input_name: str
    input_shape: tuple
    output_shapes: Dict[str, list] = field(default_factory=dict)
    rewrites: Dict[str, int] = field(default_factory=dict)


def load_onnx(path_or_model):
    onnx = require("onnx", "the X3 export")
    if isinstance(path_or_model, (str, Path)):
        path = Path(path_or_model)
        if not path.is_file():
            raise InputError(f"ONNX model {str(path)!r} does not exist.")
        try:
            return onnx.load(str(path))
        except Exception as exc:  # onnx raises DecodeError and friends
            raise InputError(f"{str(path)!r} is not a readable ONNX model ({exc}).") from exc
    return copy.deepcopy(path_or_model)


def _static_batch1(model, batch: Optional[int]) -> tuple:
    """Fix the batch axis to 1 (X3 runs batch 1 only); refuse any other forced batch."""
    graph_inputs = [i for i in model.graph.input if i.name not in {x.name for x in model.graph.initializer}]
    if len(graph_inputs) != 1:
        raise InputError(
            f"the X3 export takes a model with exactly one image input; this one has "
            f"{[i.name for i in graph_inputs]}."
        )
    inp = graph_inputs[0]
    dims = inp.type.tensor_type.shape.dim
    if len(dims) != 4:
        raise InputError(f"X3 needs a 4-D NCHW input; {inp.name!r} has rank {len(dims)}.")
    static_batch = dims[0].dim_value if dims[0].HasField("dim_value") else None
    for what, value in (("--batch", batch), ("the model's static batch", static_batch)):
        if value not in (None, 0, 1):
            raise InputError(
                f"the X3 BPU runs batch 1 only; received {what} = {value}. "
                "How to fix: export with batch 1 (drop --batch, or use --batch 1) for --target x3."
            )
    if len(model.graph.output) > MAX_OUTPUTS:
        raise InputError(f"hb_mapper takes at most {MAX_OUTPUTS} outputs; this model has {len(model.graph.output)}.")
    shape = [1] + [d.dim_value for d in dims[1:]]
    if any(d <= 0 for d in shape[1:]):
        raise InputError(f"X3 needs a static input shape; {inp.name!r} has {shape} (0 = dynamic).")
    dims[0].Clear()
    dims[0].dim_value = 1
    for out in model.graph.output:
        odims = out.type.tensor_type.shape.dim
        if len(odims) and not odims[0].HasField("dim_value"):
            odims[0].Clear()
            odims[0].dim_value = 1
    del model.graph.value_info[:]
    return inp.name, tuple(shape)


def _simplify(model):
    onnxslim = require("onnxslim", "simplifying the X3 graph")
    return onnxslim.slim(model)


def to_opset11(model):
    """Convert to opset 11 and IR 6 with ONNX's version converter; checked."""
    onnx = require("onnx", "the X3 export")
    from onnx import version_converter

    from edgereid.x3.opset import downgrade_to_opset11

    opset = opset_of(model)
    try:
        if opset < X3_OPSET:
            model = version_converter.convert_version(model, X3_OPSET)
        elif opset > X3_OPSET:
            downgrade_to_opset11(model)
    except InputError:
        raise
    except Exception as exc:  # the converter raises plain RuntimeError/ValueError
        raise InputError(
            f"cannot convert the model from opset {opset} to opset {X3_OPSET} for the X3 ({exc}). "
            "How to fix: export the model at opset 11 (torch.onnx.export(..., opset_version=11))."
        ) from exc
    model.ir_version = min(X3_IR_VERSION, MAX_IR_VERSION)
    del model.graph.value_info[:]
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise InputError(f"the graph is not valid at opset {X3_OPSET} after conversion ({exc}).") from exc
    return model


def build_x3_graphs(
    onnx_model,
    batch: Optional[int] = None,
    rewrites: Sequence[str] = DEFAULT_REWRITES,
    allow_unsupported: bool = False,
) -> X3Graphs:
    """Make the plain static graph and the X3 graph from an exported FP32 ONNX model.

    Args:
        onnx_model: path or onnx.ModelProto (opset <= 17, batch axis static 1 or dynamic).
        batch: the batch the user asked for, if any (anything but 1 is an error).
        rewrites: names from :data:`edgereid.x3.rewrites.REWRITES`, in order.
        allow_unsupported: keep going when an op is on neither X3 list.

    Raises:
        InputError: batch != 1, not one 4-D input, opset conversion impossible, or an operator
            the X3 cannot run (named) unless ``allow_unsupported``.
    """
    model = load_onnx(onnx_model)
    input_name, input_shape = _static_batch1(model, batch)
    plain = _simplify(model)
    x3 = copy.deepcopy(plain)
    counts = apply_rewrites(x3, rewrites)
    x3 = to_opset11(x3)
    name_nodes(x3)
    check_supported(x3, allow_unsupported)
    from edgereid.x3.graphedit import infer_shapes_light

    shapes = infer_shapes_light(x3)
    out_shapes = {o.name: shapes.get(o.name) for o in x3.graph.output}
    return X3Graphs(plain, x3, input_name, input_shape, out_shapes, counts)


def check_supported(model, allow_unsupported: bool = False) -> list:
    """Names of nodes whose op is on neither X3 list; an InputError unless allowed."""
    bad = [(n.name or f"#{i}", n.op_type) for i, n in enumerate(model.graph.node) if not X3_RULES.known(n.op_type)]
    if bad and not allow_unsupported:
        listed = ", ".join(f"{name} ({op})" for name, op in bad[:10])
        raise InputError(
            f"the X3 cannot run {len(bad)} node(s) of this model on its BPU or its CPU: {listed}. "
            "How to fix: replace these operators in the model, or pass --allow-unsupported to write "
            "the bundle anyway (hb_mapper will then reject the model)."
        )
    return [name for name, _ in bad] if bad else []


def name_nodes(model) -> None:
    """Give every node a unique name (reports and nodes_to_exclude refer to nodes by name)."""
    seen = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)


__all__ = ["ALLOWED_OPSETS", "UNSUPPORTED", "X3Graphs", "build_x3_graphs", "check_supported", "to_opset11"]
