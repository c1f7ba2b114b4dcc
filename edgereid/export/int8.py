"""The INT8 steps every target shares: calibrate, write the QDQ model, measure what INT8 costs,
and (``max_drop``) keep the most sensitive layers in float until the hold-out meets the budget.

Order matters: ranges are calibrated on the shipped ``model.onnx`` itself, so the TensorRT cache
and the QDQ model name exactly the tensors of that file. Every INT8 figure here is simulated as
float fake-quantization (:mod:`edgereid.calibration.fakequant`): the device's figure on any host.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Callable

from edgereid.bundle import atomic_write_text, json_text
from edgereid.calibration import accuracy, bias_correction, fakequant, mixed, qdq, sensitivity
from edgereid.calibration.crops import sample_indices
from edgereid.calibration.ranges import DEFAULT_BUDGET_BYTES, TensorRanges, calibrate_ranges
from edgereid.calibration.reader import CropBatches
from edgereid.errors import InputError
from edgereid.export.targets import ExportContext
from edgereid.lazy import require
from edgereid.runtime.embedder import OnnxruntimeEmbedder

LOG = logging.getLogger(__name__)

CALIB_FEED_BATCH = 4  # crops per calibration feed for dynamic-batch models
SENSITIVITY_CROPS = 4  # a few crops show where the noise enters; all activations are held
BIAS_CORRECTION_CROPS = 64  # calibration crops whose channel means move the biases (64 vs 256: same gain)
BIAS_CORRECTION_BUDGET_S = 60.0  # per quantized model; a slow model gets fewer crops (RGA-SC: ~8)
FLOAT_RUNS_AS = {"trt": "FP16 in TensorRT (no Q/DQ; int8-cache / DLA builds pin it with --layerPrecisions)",
                 "cpu": "FP32 in ONNX Runtime",
                 "x3": "float"}


def calibration_batches(ctx: ExportContext, crops: list) -> CropBatches:
    """Feeds for ``model.onnx``: its static batch exactly, else small batches."""
    static = ctx.profile.static
    batch = ctx.profile.min if static else CALIB_FEED_BATCH
    return CropBatches(crops, ctx.src.spec, ctx.src.input_name, batch=batch, exact=static)


def quantize_with_reports(
    ctx: ExportContext, flavour: str, out_name: str,
    adjust_ranges: Callable[[TensorRanges], TensorRanges] | None = None,
) -> tuple[TensorRanges, dict, dict]:
    """Calibrate ``ctx.model_path``, write the QDQ model ``out_name`` and its reports.

    Args:
        adjust_ranges: applied to the calibrated ranges before quantizing (DLA scale tying).

    Returns:
        (ranges, files, extra): files has the QDQ model plus ``accuracy_report`` and
        ``sensitivity_report`` roles; extra has ``int8`` and ``accuracy`` manifest entries
        (``int8.mixed_precision`` lists the layers kept in float and the INT8 share of MACs).
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
    if adjust_ranges is not None:
        ranges = adjust_ranges(ranges)
    reduce_range = bool(ctx.options.get("reduce_range")) if flavour == "cpu" else None
    real = ctx.src.trained and not ctx.options.get("demo")  # untrained weights / demo crops: nothing to keep
    correct = flavour in ("trt", "cpu") and ctx.options.get("bias_correction", True) and real
    bias_feeds = _bias_feeds(ctx) if correct else []
    bias_reports: dict[tuple, dict] = {}  # float layers -> correction report

    def quantize(float_layers: list, path: Path) -> Path:
        float_layers = mixed.with_weight_sharers(ctx.model, float_layers)

        def write(model_path: Path, quantize_bias: bool | None = None) -> Path:
            return qdq.quantize_qdq(model_path, path, ranges, flavour, op_types, nodes_to_exclude=float_layers or None,
                                    reduce_range=reduce_range, quantize_bias=quantize_bias)

        if not bias_feeds:
            return write(ctx.model_path)
        # every trial is judged on the model that ships: corrected too
        bias_reports[tuple(float_layers)] = _corrected(ctx, flavour, write, bias_feeds, float_layers, path)
        return path

    out = quantize([], ctx.staging / out_name)
    int8: dict[str, Any] = {
        "flavour": "s8s8 (TensorRT QDQ)" if flavour == "trt" else "u8s8 (ONNX Runtime CPU)",
        "calib_method": method,
        "op_types": list(op_types) if op_types else "all",
        "calibration": ctx.crops.source,
        "simulation": fakequant.SIMULATED,
        "host_cpu_isa": ctx.options.get("host_cpu_isa"),
    }
    if flavour == "cpu":
        int8["cpu_isa"] = ctx.options.get("cpu_isa")
        int8["reduce_range"] = bool(reduce_range)
    int8["qdq_placement"] = ("inputs of Conv/Gemm/MatMul only (TensorRT's placement)" if flavour == "trt"
                             else "inputs and outputs of quantized ops (ONNX Runtime's QDQ form)")
    files: dict[str, str] = {}
    extra: dict[str, Any] = {"int8": int8}
    held = ctx.crops.holdout
    feeds = list(calibration_batches(ctx, list(held or ctx.crops.calib)[:SENSITIVITY_CROPS]))
    sens = sensitivity.sensitivity_report(ctx.model_path, out, feeds, op_types or qdq.DEFAULT_OP_TYPES)
    atomic_write_text(ctx.staging / "sensitivity_report.json", json_text(sens))
    files["sensitivity_report"] = "sensitivity_report.json"
    int8["output_sqnr_db"] = sens["output_sqnr_db"]
    int8["noisiest_layers"] = [d["node"] for d in sens["layers"][:5]]
    LOG.info("INT8 sensitivity (noisiest layers first):\n%s", sensitivity.format_table(sens, top=5))
    order = [d["node"] for d in sens["layers"]]
    macs = mixed.macs_by_node(ctx.model, ctx.profile.opt)
    float_layers: list = []
    rep = None
    if held:
        reference = accuracy.embed_all(_ort(ctx, ctx.model_path), held)

        def evaluate(layers: list, path: Path | None = None) -> dict:
            with tempfile.TemporaryDirectory(prefix="edgereid-mixed-") as tmp:
                if path is None:
                    path = out if not layers else quantize(layers, Path(tmp) / "q.onnx")
                return accuracy.accuracy_report(
                    _ort(ctx, ctx.model_path), _ort(ctx, path, fake_quant=True), held,
                    ctx.crops.holdout_labels, note=_note(ctx), fp32_embeddings=reference)

        budget = ctx.options.get("budget")
        budget = budget.for_flavour(flavour) if budget is not None else None
        if budget is not None and not real:
            budget = None  # untrained weights / a demo set carry no accuracy to keep: full INT8
            int8["mixed_precision"] = {"skipped": "untrained weights or demo calibration: full INT8"}
        if budget is None:
            rep = evaluate([], out)
        else:
            search = mixed.search_float_layers(order, evaluate, budget)
            float_layers, rep = mixed.with_weight_sharers(ctx.model, search["float_layers"]), search["report"]
            if float_layers:
                quantize(float_layers, out)
            labelled = rep.get("delta_rank1_points") is not None
            int8["mixed_precision"] = {
                "budget": budget.describe(labelled),
                "met": search["met"],
                "float_layers": float_layers,
                "float_layers_run_as": FLOAT_RUNS_AS[flavour],
                "order": "sensitivity_report.json layers (added noise, largest first)",
                "trials": search["trials"],
                "selected_on": "the hold-out crops of the accuracy report (identities not used for calibration)",
            }
            queries = (rep.get("fp32") or {}).get("queries")
            if labelled and queries:  # one query's worth of rank-1: the budget cannot be judged finer
                step = 100.0 / queries
                int8["mixed_precision"]["rank1_step_points"] = round(step, 3)
                if step > budget.max_drop:
                    LOG.warning("INT8: the hold-out has %d queries, one query = %.2f rank-1 points > --max-drop "
                                "%g: the rank-1 budget means no net lost query. More labelled identities "
                                "give the search a finer rank-1.", queries, step, budget.max_drop)
            if not search["met"]:
                LOG.warning("INT8: no number of float layers met the budget (%s); kept the most accurate "
                            "(%d float layers). See accuracy_report.json.", budget.describe(labelled),
                            len(float_layers))
    int8["int8_mac_share"] = round(mixed.int8_mac_share(macs, order, float_layers), 4)
    if bias_feeds:
        report = {k: v for k, v in bias_reports.get(tuple(float_layers), {}).items() if k != "biases"}
        where = " (int8-qdq engines); not int8-cache / DLA engines" if flavour == "trt" else ""
        int8["bias_correction"] = {**report, "applies_to": out_name + where,
                                   "crops": "calibration crops (never the hold-out)"}
    else:
        int8["bias_correction"] = {"skipped": "not for this target" if flavour not in ("trt", "cpu") else
                                   "untrained weights or demo calibration" if not real else
                                   "turned off (--no-bias-correction)"}
    if rep is not None:
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
    if flavour == "trt":
        int8.update(qdq.check_trt_qdq(out))
    return ranges, files, extra


def _corrected(ctx: ExportContext, flavour: str, write: Callable[..., Path], feeds: list,
               float_layers: list, path: Path) -> dict:
    """Write the bias-corrected QDQ model to ``path``; returns the correction report.

    The correction is measured on the float-bias form of the QDQ model. TensorRT's form keeps
    float biases, so that corrected model is the result. ONNX Runtime's u8s8 form stores int32
    biases (its QLinearConv needs them): the corrected biases go into a copy of model.onnx, which
    is then quantized the normal way (same activation ranges).
    """
    onnx = require("onnx", "bias correction")
    from onnx import numpy_helper

    model, report = bias_correction.correct_biases(
        ctx.model, onnx.load(str(write(ctx.model_path, quantize_bias=False))), feeds,
        exclude=float_layers, time_budget_s=BIAS_CORRECTION_BUDGET_S)
    if flavour == "trt":
        onnx.save(model, str(path))
        return report
    corrected = {i.name: i for i in model.graph.initializer}
    source = onnx.ModelProto()
    source.CopyFrom(ctx.model)
    own = {n.input[2] for n in bias_correction.biased_layers(source)}  # a shared bias: one value, many offsets
    written = []
    for init in source.graph.initializer:
        if init.name in report.get("biases", ()) and init.name in own:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(corrected[init.name]), init.name))
            written.append(init.name)
    with tempfile.TemporaryDirectory(prefix="edgereid-bias-") as tmp:
        onnx.save(source, str(Path(tmp) / "model.onnx"))
        write(Path(tmp) / "model.onnx")
    return {**report, "layers": len(written), "biases": written}


def _bias_feeds(ctx: ExportContext) -> list:
    """A deterministic sample of the calibration crops (not the hold-out) as model feeds."""
    calib = ctx.crops.calib
    picked = sample_indices(len(calib), min(BIAS_CORRECTION_CROPS, len(calib)), int(ctx.options.get("seed", 0)))
    return list(calibration_batches(ctx, [calib[i] for i in picked]))


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
