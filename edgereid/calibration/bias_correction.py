"""Empirical bias correction of a QDQ model, layer by layer.

Why: INT8 rounding and clipping are not zero-mean per output channel: a convolution's quantized
weights times the mean of its (quantized) input give a per-channel offset, and every layer
downstream inherits and amplifies it. The fix (Nagel et al., "Data-Free Quantization Through
Weight Equalization and Bias Correction", ICCV 2019, the empirical variant) measures, on
calibration crops, the mean of each biased Conv/Gemm output in the FP32 model and in the QDQ
model, and moves the difference into the layer's float bias.

Layers are corrected level by level in graph order (a layer's level = 1 + the deepest corrected
layer upstream): correcting all layers at once over-corrects, because a layer's measured offset
is partly inherited from layers above that are being corrected too (OSNet x0.25: the last conv's
mean error grew five-fold that way).

The device computes exactly this: in the ``trt`` flavour the bias stays a float initializer
(``QuantizeBias=False``) that TensorRT adds in the convolution's int32->float epilogue. The
``int8-cache`` and DLA engines quantize ``model.onnx`` themselves and do not get it. The ``cpu``
(u8s8) flavour is measured on its float-bias form and quantized again (edgereid.export.int8).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from edgereid.calibration.fakequant import fake_quant_session_with_outputs
from edgereid.lazy import require

CORRECTED_OPS = ("Conv", "Gemm")  # ops with a float bias input (MatMul has none)
QDQ_SLOWDOWN = 1.5  # a fake-quant pass vs the FP32 pass (measured ~1.3-1.6x on OSNet and RGA-SC)


def biased_layers(model: Any) -> list:
    """Conv/Gemm nodes with a bias initializer of their own, in graph order.

    A bias shared by several nodes is left alone: one value cannot cancel several offsets, and
    correcting it once per user would add the shifts up. (ONNX Runtime's quantizer already gives
    each node its own copy in a QDQ model, so OSNet's shared gate biases are corrected per node
    there; in the cpu flavour's source model.onnx they stay shared and uncorrected.)
    """
    inits = {i.name for i in model.graph.initializer}
    users: dict[str, int] = {}
    for node in model.graph.node:
        for name in set(node.input):
            users[name] = users.get(name, 0) + 1
    return [n for n in model.graph.node if n.op_type in CORRECTED_OPS and len(n.input) > 2
            and n.input[2] in inits and users[n.input[2]] == 1]


def layer_levels(model: Any, layers: Sequence[Any]) -> dict[str, int]:
    """Node name -> 0-based level: 1 + the highest level of a layer in ``layers`` upstream of it."""
    wanted = {n.name for n in layers}
    above: dict[str, int] = {}  # tensor -> deepest wanted layer level feeding it (-1: none)
    level: dict[str, int] = {}
    for node in model.graph.node:  # ONNX graphs are topologically sorted
        deepest = max((above.get(t, -1) for t in node.input), default=-1)
        if node.name in wanted:
            level[node.name] = deepest + 1
            deepest = level[node.name]
        for out in node.output:
            above[out] = deepest
    missing = wanted - level.keys()
    if missing:
        raise ValueError(f"layers not in the graph: {sorted(missing)[:3]}")
    return level


def channel_means(model: Any, tensors: Sequence[str], feeds: Sequence[dict]) -> dict[str, np.ndarray]:
    """Mean over batch and positions of each channel (axis 1) of ``tensors`` (fake-quant session)."""
    session = fake_quant_session_with_outputs(model, tensors)
    sums: dict[str, np.ndarray] = {}
    counts = dict.fromkeys(tensors, 0)
    for feed in feeds:
        for name, value in zip(tensors, session.run(list(tensors), feed)):
            flat = np.moveaxis(np.asarray(value), 1, 0).reshape(value.shape[1], -1)
            sums[name] = sums.get(name, 0.0) + flat.sum(axis=1, dtype=np.float64)
            counts[name] += flat.shape[1]
    return {name: sums[name] / max(1, counts[name]) for name in tensors}


def correct_biases(
    float_model: Any, qdq_model: Any, feeds: Sequence[dict], exclude: Sequence[str] = (),
    time_budget_s: float | None = None,
) -> tuple[Any, dict]:
    """A copy of ``qdq_model`` whose Conv/Gemm biases cancel the mean INT8 error on ``feeds``.

    Args:
        float_model: the FP32 ModelProto the QDQ model was made from (same tensor names).
        qdq_model: its QDQ ModelProto (float biases: the ``trt`` flavour).
        feeds: calibration feeds (never the accuracy hold-out).
        exclude: node names left alone (layers kept in float carry no INT8 offset of their own).
        time_budget_s: one pass per level makes the cost levels x feeds; when the FP32 pass says the
            whole correction would take longer, fewer feeds are used (at least one), recorded in
            the report. None = all feeds.

    Returns:
        (corrected model, report ``{"layers" (corrected), "levels", "feeds", "mean_abs_shift",
        "biases" (initializer names moved)}``).
    """
    onnx = require("onnx", "bias correction")
    from onnx import numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(qdq_model)
    skip = set(exclude)
    layers = [n for n in biased_layers(model) if n.name not in skip]
    if not layers or not feeds:
        return model, {"layers": 0, "levels": 0, "feeds": len(feeds), "biases": []}
    levels = layer_levels(model, layers)
    inits = {i.name: i for i in model.graph.initializer}
    outputs = [n.output[0] for n in layers]
    n_levels = len(set(levels.values()))
    shifts, names = [], []
    start = time.perf_counter()
    reference = channel_means(float_model, outputs, feeds)
    estimate = (time.perf_counter() - start) * QDQ_SLOWDOWN * n_levels
    if time_budget_s is not None and estimate > time_budget_s and len(feeds) > 1:
        keep = max(1, int(len(feeds) * time_budget_s / estimate))
        feeds = [feeds[round(i * len(feeds) / keep)] for i in range(keep)]  # spread over the sample
        reference = channel_means(float_model, outputs, feeds)
    for level in sorted(set(levels.values())):
        group = [n for n in layers if levels[n.name] == level]
        measured = channel_means(model, [n.output[0] for n in group], feeds)
        for node in group:
            init = inits[node.input[2]]
            bias = numpy_helper.to_array(init)
            shift = reference[node.output[0]] - measured[node.output[0]]
            if shift.shape != bias.shape:
                continue  # a broadcast bias (Gemm C of another shape): left alone
            shifts.append(float(np.abs(shift).mean()))
            names.append(init.name)
            init.CopyFrom(numpy_helper.from_array((bias + shift).astype(bias.dtype), init.name))
    return model, {"layers": len(shifts), "levels": n_levels, "feeds": len(feeds),
                   "mean_abs_shift": round(float(np.mean(shifts)), 6) if shifts else 0.0, "biases": names}
