"""Which layers of model.onnx Xavier's DLA can take under TensorRT 8.5, and the GPU<->DLA transitions.

The rules are data (:data:`DLA_RULES`, :data:`GENERAL`), encoded from the TensorRT 8.5 Developer
Guide, section "DLA Supported Layers and Restrictions"
(https://docs.nvidia.com/deeplearning/tensorrt/archives/tensorrt-852/developer-guide/index.html#dla_layers),
not from the current guide (later versions added layers, e.g. Shuffle, Softmax and broadcasting
ElementWise, mostly for Orin's DLA 2). Where the 8.5 text was not explicit for Xavier we chose
GPU: this report never promises a layer to the DLA that TensorRT might refuse. It is a host-side
prediction; ``trtexec --verbose`` on the device prints the real placement.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

SOURCE = (
    "TensorRT 8.5 Developer Guide, 'DLA Supported Layers and Restrictions' "
    "(docs.nvidia.com/deeplearning/tensorrt/archives/tensorrt-852/developer-guide/index.html#dla_layers)"
)

GENERAL = {
    "precisions": ["FP16", "INT8"],
    "max_non_batch_dim": 8192,
    "max_batch": 4096,
    "dynamic_shapes": False,
    "max_loadables_per_core": 16,
}

Attrs = Dict[str, Any]
Check = Callable[[Attrs, List[List[Any]]], Optional[str]]


def _ints(attrs: Attrs, key: str, default: List[int]) -> List[int]:
    return list(attrs.get(key, default))


def _conv(attrs: Attrs, shapes: List[List[Any]]) -> str | None:
    k = _ints(attrs, "kernel_shape", [1, 1])
    pads = _ints(attrs, "pads", [0] * 2 * len(k))
    strides = _ints(attrs, "strides", [1] * len(k))
    dil = _ints(attrs, "dilations", [1] * len(k))
    if len(k) != 2:
        return "DLA convolution is 2-D only"
    if not all(1 <= v <= 32 for v in k):
        return f"kernel {k} outside [1, 32]"
    if not all(0 <= p <= 31 for p in pads) or any(p >= kk for p, kk in zip(pads, k + k) if kk > 1):
        return f"padding {pads} outside [0, 31] or not smaller than the kernel"
    if not all(1 <= s <= 8 for s in strides):
        return f"stride {strides} outside [1, 8]"
    if not all(1 <= d <= 32 for d in dil):
        return f"dilation {dil} outside [1, 32]"
    return None


def _pool(attrs: Attrs, shapes: List[List[Any]]) -> str | None:
    k = _ints(attrs, "kernel_shape", [1, 1])
    pads = _ints(attrs, "pads", [0] * 2 * len(k))
    strides = _ints(attrs, "strides", [1] * len(k))
    if len(k) != 2:
        return "DLA pooling is 2-D only"
    if not all(1 <= v <= 8 for v in k):
        return f"pooling window {k} outside [1, 8]"
    if not all(0 <= p <= 7 for p in pads):
        return f"padding {pads} outside [0, 7]"
    if not all(1 <= s <= 16 for s in strides):
        return f"stride {strides} outside [1, 16]"
    return None


def _eltwise(attrs: Attrs, shapes: List[List[Any]]) -> str | None:
    if len(shapes) == 2 and shapes[0] and shapes[1] and list(shapes[0]) != list(shapes[1]):
        return f"broadcast {shapes[0]} vs {shapes[1]} (8.5 DLA ElementWise needs equal shapes)"
    return None


def _concat(attrs: Attrs, shapes: List[List[Any]]) -> str | None:
    axis = attrs.get("axis", 1)
    rank = len(shapes[0]) if shapes and shapes[0] else 4
    if axis not in (1, 1 - rank):
        return f"concatenation on axis {axis} (DLA: channel axis only)"
    return None


def _ok(attrs: Attrs, shapes: List[List[Any]]) -> str | None:
    return None


# ONNX op -> (TensorRT layer it becomes, check). Ops absent here run on the GPU.
DLA_RULES: Dict[str, Tuple[str, Check]] = {
    "Conv": ("Convolution", _conv),
    "ConvTranspose": ("Deconvolution", _conv),
    "Relu": ("Activation", _ok),
    "Sigmoid": ("Activation", _ok),
    "Tanh": ("Activation", _ok),
    "Clip": ("Activation", _ok),
    "LeakyRelu": ("Activation", _ok),
    "MaxPool": ("Pooling", _pool),
    "AveragePool": ("Pooling", _pool),
    "BatchNormalization": ("Scale", _ok),
    "Add": ("ElementWise", _eltwise),
    "Sub": ("ElementWise", _eltwise),
    "Mul": ("ElementWise", _eltwise),
    "Max": ("ElementWise", _eltwise),
    "Min": ("ElementWise", _eltwise),
    "Concat": ("Concatenation", _concat),
}

# Why common ops of our models stay on the GPU (for the report's reason column).
GPU_REASONS = {
    "GlobalAveragePool": "parsed as a Reduce layer; Reduce is not a DLA layer in 8.5",
    "ReduceMean": "Reduce is not a DLA layer in 8.5",
    "MatMul": "MatrixMultiply between activations is not a DLA layer",
    # onnx-tensorrt 8.5 (builtin_op_importers.cpp, DEFINE_BUILTIN_OP_IMPORTER(Gemm)) builds Gemm as
    # IMatrixMultiplyLayer + IElementWiseLayer (bias), not IFullyConnectedLayer
    "Gemm": "the 8.5 ONNX parser imports Gemm as MatrixMultiply + ElementWise; MatrixMultiply is not a DLA layer",
    "Reshape": "Shuffle is not a DLA layer on Xavier in 8.5",
    "Flatten": "Shuffle is not a DLA layer on Xavier in 8.5",
    "Transpose": "Shuffle is not a DLA layer on Xavier in 8.5",
    "Softmax": "SoftMax on DLA is Orin-only",
    "Div": "Div ElementWise is not in the 8.5 Xavier DLA list",
}


# INT8 on the DLA (TensorRT 8.5 Developer Guide, DLA layers): a Pooling layer's input and output
# need the same scale, and a Concatenation's inputs and output all one scale. TensorRT does not
# fix this itself; a layer that breaks it falls back to the GPU.
SCALE_TIED = {"MaxPool": "Pooling", "AveragePool": "Pooling", "Concat": "Concatenation"}


def scale_groups(model: Any) -> List[List[str]]:
    """Tensors that must share one INT8 scale on the DLA (merged where groups share a tensor).

    Returns:
        Lists of tensor names, each of 2+ tensors, in graph order.
    """
    inits = {i.name for i in model.graph.initializer}
    parent: Dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    order: List[str] = []
    for node in model.graph.node:
        if node.op_type not in SCALE_TIED:
            continue
        tensors = [t for t in list(node.input[:1] if node.op_type != "Concat" else node.input) + list(node.output[:1])
                   if t and t not in inits]
        for t in tensors:
            if t not in parent:
                order.append(t)
            find(t)
        for t in tensors[1:]:
            parent[find(t)] = find(tensors[0])
    groups: Dict[str, List[str]] = {}
    for t in order:
        groups.setdefault(find(t), []).append(t)
    return [g for g in groups.values() if len(g) > 1]


def tie_amax(amax: Dict[str, float], groups: List[List[str]]) -> Dict[str, float]:
    """Each grouped tensor gets its group's largest amax (nothing is clipped that was not before)."""
    out = dict(amax)
    for group in groups:
        known = [amax[t] for t in group if t in amax]
        if known:
            for t in group:
                if t in amax:
                    out[t] = max(known)
    return out


def _scale_problem(op_type: str, tensors: List[str], amax: Dict[str, float]) -> str | None:
    values = [amax.get(t) for t in tensors]
    if any(v is None for v in values):
        return None  # no INT8 scale on a tensor: FP16 there, no INT8 rule applies
    if max(values) - min(values) > 1e-6 * max(max(values), 1e-30):
        return (f"INT8 {SCALE_TIED[op_type]} on the DLA needs one scale for its inputs and output "
                f"(amax {min(values):.4g}..{max(values):.4g}); export with --dla to tie them")
    return None


def node_verdict(op_type: str, attrs: Attrs, shapes: List[List[Any]]) -> Tuple[str, str]:
    """("DLA" | "GPU", reason) for one ONNX node with its input shapes."""
    for shape in shapes:
        if any(isinstance(d, int) and d > GENERAL["max_non_batch_dim"] for d in (shape or [])[1:]):
            return "GPU", f"a dimension of {shape} exceeds {GENERAL['max_non_batch_dim']}"
        if any(not isinstance(d, int) for d in (shape or [])):
            return "GPU", "dynamic dimension (DLA has no dynamic shapes)"
    rule = DLA_RULES.get(op_type)
    if rule is None:
        return "GPU", GPU_REASONS.get(op_type, f"{op_type} is not a DLA layer in TensorRT 8.5")
    layer, check = rule
    problem = check(attrs, shapes)
    return ("GPU", f"{layer}: {problem}") if problem else ("DLA", layer)


def count_transitions(devices: Dict[str, str], edges: List[Tuple[str, str]]) -> int:
    """Edges (producer node, consumer node) whose two ends run on different devices."""
    return sum(devices[a] != devices[b] for a, b in edges if a in devices and b in devices)


def count_dla_islands(devices: Dict[str, str], edges: List[Tuple[str, str]]) -> int:
    """Connected groups of DLA nodes (each becomes at least one DLA loadable)."""
    parent = {n: n for n, d in devices.items() if d == "DLA"}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        if a in parent and b in parent:
            parent[find(a)] = find(b)
    return len({find(n) for n in parent})


def dla_report(model: Any, batch: int | None = None, amax: Dict[str, float] | None = None) -> Dict[str, Any]:
    """Per-node DLA/GPU verdicts of an ONNX ModelProto (shape-inferred here), with totals.

    Args:
        amax: INT8 ranges per tensor (what calib.cache carries); applies the DLA's INT8 scale
            rules (:data:`SCALE_TIED`). None = the FP16 verdicts.
        batch: analyse as if the symbolic batch axis were this static size (a dynamic-batch
            bundle cannot use the DLA at all; the per-layer verdicts show what --batch N would give).
    """
    from onnx import ModelProto, helper, shape_inference

    dynamic = _has_symbolic_batch(model)
    if batch is not None and dynamic:
        copy = ModelProto()
        copy.CopyFrom(model)
        for vi in list(copy.graph.input[:1]) + list(copy.graph.output[:1]):
            vi.type.tensor_type.shape.dim[0].dim_value = int(batch)
        del copy.graph.value_info[:]
        model = copy
    model = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
    inits = {i.name for i in model.graph.initializer}
    skip = {"Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Cast", "ConstantOfShape"}
    producer, nodes, devices = {}, [], {}
    for i, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{i}"
        for o in node.output:
            producer[o] = name
        if node.op_type in skip and all(t in inits or t not in shapes for t in node.input):
            continue  # shape arithmetic on constants: folded by the parser, no layer
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        in_shapes = [shapes.get(t) for t in node.input if t and t not in inits]
        device, reason = node_verdict(node.op_type, attrs, in_shapes)
        if device == "DLA" and amax is not None and node.op_type in SCALE_TIED:
            tied = list(node.input if node.op_type == "Concat" else node.input[:1]) + list(node.output[:1])
            problem = _scale_problem(node.op_type, [t for t in tied if t and t not in inits], amax)
            if problem:
                device, reason = "GPU", problem
        devices[name] = device
        nodes.append({"node": name, "op_type": node.op_type, "device": device, "reason": reason})
    edges = [(producer[t], n.name or f"{n.op_type}_{i}") for i, n in enumerate(model.graph.node)
             for t in n.input if t in producer]
    dla = sum(d == "DLA" for d in devices.values())
    islands = count_dla_islands(devices, edges)
    return {
        "source": SOURCE,
        "general_restrictions": GENERAL,
        "layers": nodes,
        "dla_layers": dla,
        "gpu_layers": len(devices) - dla,
        "gpu_dla_transitions": count_transitions(devices, edges),
        "dla_islands": islands,
        "loadable_limit_exceeded": islands > GENERAL["max_loadables_per_core"],
        "dynamic_batch": dynamic,
        "analysed_batch": batch if dynamic else None,
        "usable": not dynamic,
        "usable_note": "dynamic batch: the DLA cannot run this model; export with --batch N --dla"
        if dynamic else "static batch: build with ./build_engine.sh dla0 (GPU fallback on)",
        "int8_scale_rules": amax is not None,
        "verified_on_device": False,
    }


def _has_symbolic_batch(model: Any) -> bool:
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    return not dim.HasField("dim_value")
