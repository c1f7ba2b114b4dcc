"""INT8 QDQ models through onnxruntime.quantization, in the two flavours the targets need.

- ``trt``: what TensorRT 8.4/8.5's ONNX parser accepts: signed int8 activations and weights,
  zero points 0 (symmetric), per-tensor activations, per-channel weights (axis 0 for Conv and
  for Gemm with transB=1, axis 1 for MatMul), weights kept as float initializers behind a
  Quantize/Dequantize pair (``AddQDQPairToWeight``) and biases left in float
  (``QuantizeBias=False``). ORT's default output (int8 weights, int32 biases) is rejected there.
  Q/DQ sit on the *inputs* of Conv/Gemm/MatMul only, never on their outputs
  (``OpTypesToExcludeOutputQuantization``): NVIDIA's own QAT toolkit quantizes a convolution's
  input and weight and nothing else (NVIDIA/TensorRT release/8.5,
  tools/pytorch-quantization/pytorch_quantization/nn/modules/quant_conv.py: ``_input_quantizer``
  and ``_weight_quantizer``), and TensorRT fuses the next layer's Q into the convolution. ORT's
  default also quantizes each output, so a Conv -> ReLU -> Conv chain was rounded twice (before and
  after the ReLU): OSNet x0.25 on 31 unseen PKU identities, cosine to FP32 0.989 -> 0.995.
- ``cpu``: u8 activations / s8 weights (u8s8), asymmetric activations, which ONNX Runtime runs
  fast on x86 CPUs with VNNI; the s8s8 TensorRT flavour is slow on CPUs.

The op types to quantize and the default calibration method were chosen by measurement on the
shared OSNet / PKU-Reid crops (benchmarks/results/ort_int8.md): quantizing only the
compute-heavy Conv/Gemm/MatMul loses far less rank-1 than quantizing every op.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any, Sequence

from edgereid.calibration.ranges import TensorRanges
from edgereid.errors import InputError
from edgereid.lazy import require

LOG = logging.getLogger(__name__)

DEFAULT_OP_TYPES = ("Conv", "Gemm", "MatMul")
DEFAULT_METHOD = "percentile"
FLAVOURS = ("trt", "cpu", "x3")


def qdq_options(flavour: str) -> dict[str, Any]:
    """quantize_static keyword arguments of a flavour (pure: tested without ORT)."""
    if flavour == "trt":
        return {
            "activation_type": "QInt8",
            "weight_type": "QInt8",
            "per_channel": True,
            "reduce_range": False,
            "extra_options": {
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "AddQDQPairToWeight": True,
                "QuantizeBias": False,
                "DedicatedQDQPair": True,
                "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1},
                "OpTypesToExcludeOutputQuantization": list(DEFAULT_OP_TYPES),
            },
        }
    if flavour == "cpu":
        return {
            "activation_type": "QUInt8",
            "weight_type": "QInt8",
            "per_channel": True,
            "reduce_range": False,
            "extra_options": {"ActivationSymmetric": False, "WeightSymmetric": True},
        }
    if flavour == "x3":  # the X3 BPU's form, approximately: symmetric int8 both, int8 weights stored
        return {
            "activation_type": "QInt8",
            "weight_type": "QInt8",
            "per_channel": True,
            "reduce_range": False,
            "extra_options": {"ActivationSymmetric": True, "WeightSymmetric": True},
        }
    raise InputError(f"unknown QDQ flavour {flavour!r}; valid: {list(FLAVOURS)}.")


def quantize_qdq(
    model_path: str | Path,
    out_path: str | Path,
    ranges: TensorRanges,
    flavour: str = "trt",
    op_types: Sequence[str] | None = DEFAULT_OP_TYPES,
    nodes_to_quantize: Sequence[str] | None = None,
    nodes_to_exclude: Sequence[str] | None = None,
    reduce_range: bool | None = None,
    quantize_bias: bool | None = None,
) -> Path:
    """Write the QDQ model of ``model_path`` using precomputed activation ranges.

    Args:
        ranges: from :func:`edgereid.calibration.ranges.calibrate_ranges` on the same model.
        op_types: op types to quantize; None = every op type ORT can quantize.
        nodes_to_quantize: restrict to these node names (sensitivity analysis).
        nodes_to_exclude: keep these nodes in float (the X3's CPU-fallback nodes, FP16 layers).
        reduce_range: 7-bit weights (None = the flavour's default); for u8s8 on x86 CPUs without
            VNNI, whose integer kernels saturate with 8-bit weights (see :func:`cpu_reduce_range`).
        quantize_bias: override the flavour's bias form (False: float biases, for bias correction).
    """
    q = require("onnxruntime.quantization", "INT8 quantization")
    calibrate = require("onnxruntime.quantization.calibrate", "INT8 quantization")
    opts = qdq_options(flavour)
    if quantize_bias is not None:
        opts["extra_options"]["QuantizeBias"] = bool(quantize_bias)
    with tempfile.TemporaryDirectory(prefix="edgereid-qdq-") as tmp:
        cache = Path(tmp) / "ranges.json"
        calibrate.save_tensors_data(ranges.to_ort(), cache)
        _quiet_logging(
            q.quantize_static,
            str(model_path),
            str(out_path),
            calibration_data_reader=None,
            quant_format=q.QuantFormat.QDQ,
            op_types_to_quantize=list(op_types) if op_types else None,
            nodes_to_quantize=list(nodes_to_quantize) if nodes_to_quantize else None,
            nodes_to_exclude=list(nodes_to_exclude) if nodes_to_exclude else None,
            per_channel=opts["per_channel"],
            reduce_range=opts["reduce_range"] if reduce_range is None else bool(reduce_range),
            activation_type=getattr(q.QuantType, opts["activation_type"]),
            weight_type=getattr(q.QuantType, opts["weight_type"]),
            calibrate_method=ranges.to_ort().calibration_method,
            extra_options=dict(opts["extra_options"]),
            calibration_cache_path=str(cache),
        )
    if flavour == "cpu":
        onnx = require("onnx", "INT8 quantization")
        model = onnx.load(str(out_path))
        if unshare_weight_dequantizers(model):
            onnx.save(model, str(out_path))
    return Path(out_path)


def unshare_weight_dequantizers(model: Any) -> int:
    """Give every consumer of a shared quantized weight its own DequantizeLinear and initializers.

    Why: ORT fuses each ``DQ(weight) -> Conv`` into a QLinearConv that reads the int8 weight
    directly; on CPUs whose u8s8 kernels saturate, the option that makes them exact
    (``fakequant.EXACT_U8S8_CONFIG``) rewrites each such weight to uint8 under the name
    ``<weight>_s8_2_u8`` (onnxruntime/core/optimizer/qdq_transformer/s8_to_u8.cc), and the second
    node sharing it fails session creation with "Attempt to replace the existing tensor" (ORT 1.32;
    OSNet's channel gate is one weight used by 4 convolutions). Returns the number of copies made.
    """
    inits = {i.name: i for i in model.graph.initializer}
    users: dict[str, list[tuple[Any, int]]] = {}
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            users.setdefault(name, []).append((node, k))
    copies = []
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        for n, (user, k) in enumerate(users.get(node.output[0], [])[1:], 1):
            dq = type(node)()
            dq.CopyFrom(node)
            dq.name = f"{node.name or node.output[0]}_copy{n}"
            for j, name in enumerate(node.input):
                if name in inits:
                    init = model.graph.initializer.add()
                    init.CopyFrom(inits[name])
                    init.name = dq.input[j] = f"{name}_copy{n}"
            dq.output[0] = user.input[k] = f"{node.output[0]}_copy{n}"
            copies.append(dq)
    for dq in reversed(copies):  # inputs are initializers only: any position is topologically valid
        model.graph.node.insert(0, dq)
    return len(copies)


def qdq_properties(model_or_path: Any) -> dict[str, Any]:
    """What TensorRT cares about in a QDQ model, read from the graph.

    Returns:
        ``{"quantize_nodes", "zero_point_dtypes", "nonzero_zero_points", "weight_axes"
        (initializer -> axis or None), "int_initializers" (names of int8/int32 weights/biases),
        "per_tensor_activations" (bool)}``.
    """
    onnx = require("onnx", "inspecting a QDQ model")
    from onnx import numpy_helper

    model = onnx.load(str(model_or_path)) if isinstance(model_or_path, (str, Path)) else model_or_path
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    zp_dtypes, nonzero, weight_axes, act_axes = set(), 0, {}, []
    nodes = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    for n in nodes:
        if len(n.input) > 2 and n.input[2] in inits:
            zp = inits[n.input[2]]
            zp_dtypes.add(zp.dtype.name)
            nonzero += int((zp != 0).sum())
        axis = next((a.i for a in n.attribute if a.name == "axis"), None)
        scale = inits.get(n.input[1])
        per_channel = scale is not None and scale.ndim == 1  # ORT: 1-D per-channel, scalar per-tensor
        if n.op_type == "QuantizeLinear" and n.input[0] in inits:
            weight_axes[n.input[0]] = axis if per_channel else None
        elif n.op_type == "QuantizeLinear":
            act_axes.append(per_channel)
    zero_points = {n.input[2] for n in nodes if len(n.input) > 2}
    int_inits = sorted(k for k, v in inits.items() if v.dtype.name in ("int8", "uint8", "int32")
                       and k not in zero_points)
    return {
        "quantize_nodes": sum(n.op_type == "QuantizeLinear" for n in nodes),
        "zero_point_dtypes": sorted(zp_dtypes),
        "nonzero_zero_points": nonzero,
        "weight_axes": weight_axes,
        "int_initializers": int_inits,
        "per_tensor_activations": not any(act_axes),
    }


def check_trt_qdq(path: str | Path) -> dict[str, Any]:
    """Refuse a QDQ model TensorRT 8.5 would reject; returns its properties for the manifest."""
    props = qdq_properties(path)
    problems = []
    if props["quantize_nodes"] == 0:
        problems.append("no QuantizeLinear nodes")
    if props["zero_point_dtypes"] not in ([], ["int8"]):
        problems.append(f"zero points of type {props['zero_point_dtypes']} (need int8)")
    if props["nonzero_zero_points"]:
        problems.append(f"{props['nonzero_zero_points']} non-zero zero points")
    if props["int_initializers"]:
        problems.append(f"integer weights/biases {props['int_initializers'][:3]}")
    if not props["per_tensor_activations"]:
        problems.append("per-channel activation scales")
    if problems:
        raise InputError(f"{path}: the QDQ model is not in TensorRT 8.5's form: {'; '.join(problems)}.")
    return {
        "quantize_nodes": props["quantize_nodes"],
        "per_channel_weights": sum(a is not None for a in props["weight_axes"].values()),
    }


def _quiet_logging(fn, *args, **kwargs):
    """ORT's quantizer logs a pre-processing hint as a warning on every call; not for our users."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        return fn(*args, **kwargs)
    finally:
        root.setLevel(level)


def describe(op_types: Sequence[str] | None, method: str, flavour: str) -> str:
    return json.dumps({"op_types": list(op_types) if op_types else "all", "method": method, "flavour": flavour})
