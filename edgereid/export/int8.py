"""The INT8 steps every target shares: calibrate, write the QDQ model, measure what INT8 costs.

Order matters: ranges are calibrated on the shipped ``model.onnx`` itself, so the TensorRT cache
and the QDQ model name exactly the tensors of that file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edgereid.bundle import atomic_write_text, json_text
from edgereid.calibration import accuracy, fakequant, qdq, sensitivity
from edgereid.calibration.ranges import DEFAULT_BUDGET_BYTES, TensorRanges, calibrate_ranges
from edgereid.calibration.reader import CropBatches
from edgereid.errors import InputError
from edgereid.export.targets import ExportContext
from edgereid.runtime.embedder import OnnxruntimeEmbedder

LOG = logging.getLogger(__name__)

CALIB_FEED_BATCH = 4  # crops per calibration feed for dynamic-batch models
SENSITIVITY_CROPS = 4  # a few crops show where the noise enters; all activations are held


def calibration_batches(ctx: ExportContext, crops: list) -> CropBatches:
    """Feeds for ``model.onnx``: its static batch exactly, else small batches."""
    static = ctx.profile.static
    batch = ctx.profile.min if static else CALIB_FEED_BATCH
    return CropBatches(crops, ctx.src.spec, ctx.src.input_name, batch=batch, exact=static)


def quantize_with_reports(ctx: ExportContext, flavour: str, out_name: str) -> tuple[TensorRanges, dict, dict]:
    """Calibrate ``ctx.model_path``, write the QDQ model ``out_name`` and its reports.

    Returns:
        (ranges, files, extra): files has the QDQ model plus ``accuracy_report`` and
        ``sensitivity_report`` roles; extra has ``int8`` and ``accuracy`` manifest entries.
    """
    if ctx.crops is None or not ctx.crops.calib:
        raise InputError("--int8 needs calibration data: pass --calib-data (crops folder, frames or video).")
    method = ctx.options.get("calib_method") or qdq.DEFAULT_METHOD
    op_types = ctx.options.get("op_types", qdq.DEFAULT_OP_TYPES)
    batches = calibration_batches(ctx, ctx.crops.calib)
    ranges = calibrate_ranges(
        ctx.model_path, batches, method,
        symmetric=(flavour == "trt"),
        budget_bytes=int(ctx.options.get("calib_budget_bytes") or DEFAULT_BUDGET_BYTES),
        progress=bool(ctx.options.get("progress", True)),
    )
    out = ctx.staging / out_name
    qdq.quantize_qdq(ctx.model_path, out, ranges, flavour, op_types)
    int8: dict[str, Any] = {
        "flavour": "s8s8 (TensorRT QDQ)" if flavour == "trt" else "u8s8 (ONNX Runtime CPU)",
        "calib_method": method,
        "op_types": list(op_types) if op_types else "all",
        "calibration": ctx.crops.source,
    }
    if flavour == "trt":
        int8.update(qdq.check_trt_qdq(out))
    files = {}
    extra: dict[str, Any] = {"int8": int8}
    held = ctx.crops.holdout
    if held:
        rep = accuracy.accuracy_report(
            _ort(ctx, ctx.model_path), _ort(ctx, out, fake_quant=True), held, ctx.crops.holdout_labels,
            note=_note(ctx),
        )
        rep["computed_as"] = fakequant.SIMULATED
        if flavour == "cpu":  # ORT's integer kernels are what a cpu bundle really runs: both figures
            host = accuracy.accuracy_report(
                _ort(ctx, ctx.model_path), _ort(ctx, out), held, ctx.crops.holdout_labels,
                note="the u8s8 model in ONNX Runtime's integer kernels on the export host",
            )
            host["computed_as"] = fakequant.ORT_KERNELS
            host["host_cpu_isa"] = ctx.options.get("host_cpu_isa")
            rep["ort_integer_kernels"] = host
        atomic_write_text(ctx.staging / "accuracy_report.json", json_text(rep))
        files["accuracy_report"] = "accuracy_report.json"
        extra["accuracy"] = accuracy.summary(rep)
    else:
        extra["accuracy"] = {"note": "no hold-out crops: INT8 accuracy not measured"}
    feeds = list(calibration_batches(ctx, list(held or ctx.crops.calib)[:SENSITIVITY_CROPS]))
    sens = sensitivity.sensitivity_report(ctx.model_path, out, feeds, op_types or qdq.DEFAULT_OP_TYPES)
    atomic_write_text(ctx.staging / "sensitivity_report.json", json_text(sens))
    files["sensitivity_report"] = "sensitivity_report.json"
    int8["output_sqnr_db"] = sens["output_sqnr_db"]
    int8["noisiest_layers"] = [d["node"] for d in sens["layers"][:5]]
    LOG.info("INT8 sensitivity (noisiest layers first):\n%s", sensitivity.format_table(sens, top=5))
    return ranges, files, extra


def _ort(ctx: ExportContext, path: Path, fake_quant: bool = False) -> OnnxruntimeEmbedder:
    post = ctx.src.postprocess
    return OnnxruntimeEmbedder(
        str(path), ctx.src.spec, providers=["CPUExecutionProvider"], fake_quant=fake_quant,
        l2=bool(post.get("l2_normalize", True)), flip_average=bool(post.get("flip_average", False)),
    )


def _note(ctx: ExportContext) -> str:
    parts = ["simulated INT8 (the QDQ model as float fake-quantization in ONNX Runtime: int32-exact, the same "
             "on every host) vs FP32 on held-out crops"]
    if not ctx.src.trained:
        parts.append("UNTRAINED weights: the figures only show quantization noise, not accuracy")
    if ctx.options.get("demo"):
        parts.append("DEMO calibration set (few crops): not a real accuracy figure")
    return "; ".join(parts)
