"""--target xavier: what a Jetson AGX Xavier (JetPack 5, TensorRT 8.5) needs to build its engine.

Always: model.onnx, build_engine.sh (exact trtexec lines), a DLA report. With --int8 also the
TensorRT-form QDQ model, calib.cache in TensorRT's text format for the shipped model.onnx, and
the accuracy and sensitivity reports; with --int8 --dla the scales of Pooling in/out and Concat
ins/out are tied (the DLA's INT8 rules) in both calib.cache and the QDQ model.
"""

from __future__ import annotations

import logging
from typing import Any

from edgereid.bundle import atomic_write_text, json_text
from edgereid.calibration import trt_cache
from edgereid.calibration.ranges import TensorRanges
from edgereid.export.int8 import quantize_with_reports
from edgereid.export.targets import ExportContext
from edgereid.jetson import dla, plan

QDQ_NAME = "model.int8.qdq.onnx"
CACHE_NAME = "calib.cache"
SCRIPT_NAME = "build_engine.sh"
DLA_REPORT_NAME = "dla_report.json"
LOG = logging.getLogger(__name__)


def add_files(ctx: ExportContext) -> tuple[dict[str, str], dict[str, Any]]:
    trt_version = ctx.options.get("trt_version") or trt_cache.DEFAULT_TRT_VERSION
    trt_cache.trt_version_code(trt_version)  # validate before any work
    files: dict[str, str] = {"onnx": "model.onnx"}
    extra: dict[str, Any] = {}
    want_dla = bool(ctx.options.get("dla"))
    amax = None
    if ctx.precision == "int8":
        groups = dla.scale_groups(ctx.model) if want_dla else []
        ranges, int8_files, extra = quantize_with_reports(
            ctx, "trt", QDQ_NAME, adjust_ranges=(lambda r: tie_ranges(r, groups)) if groups else None)
        extra["int8"]["dla_tied_scale_groups"] = len(groups)
        amax = {k: ranges.amax(k) for k in ranges.ranges}
        files.update(int8_files)
        files["onnx_int8_qdq"] = QDQ_NAME
        names = trt_cache.graph_tensor_names(ctx.model)
        text = trt_cache.write_cache_text(ranges, names, trt_version)
        atomic_write_text(ctx.staging / CACHE_NAME, text)
        files["calib_cache"] = CACHE_NAME
        extra["int8"]["cache_entries"] = len(text.splitlines()) - 1
        extra["int8"]["cache_header"] = trt_cache.cache_header(trt_version)
    report = dla.dla_report(ctx.model, batch=ctx.profile.opt, amax=amax)
    atomic_write_text(ctx.staging / DLA_REPORT_NAME, json_text(report))
    files["dla_report"] = DLA_REPORT_NAME
    if want_dla and report["loadable_limit_exceeded"]:
        LOG.warning(
            "DLA: the model splits into %d DLA islands with %d GPU<->DLA transitions; TensorRT 8.5 loads at "
            "most %d loadables per DLA core, so expect more layers on the GPU (see dla_report.json).",
            report["dla_islands"], report["gpu_dla_transitions"], dla.GENERAL["max_loadables_per_core"],
        )
    trt = {
        "version": trt_version,
        "profile": ctx.profile.to_dict(),
        "dla": want_dla,
        "engines": {},
    }
    extra["trt_version"] = trt_version
    extra["dla"] = {k: report[k] for k in ("dla_layers", "gpu_layers", "gpu_dla_transitions", "dla_islands",
                                            "loadable_limit_exceeded", "usable")}
    manifest_like = _ManifestView(ctx, files, trt, extra.get("int8"))
    plans = plan.plans_for_bundle(manifest_like)
    trt["engines"] = {p.mode: p.engine for p in plans}
    trt["fp16_layers"] = {p.mode: len(p.fp16_layers) for p in plans if p.fp16_layers}
    for p in plans:
        for note in p.notes:
            LOG.warning("%s: %s", p.mode, note)
    trt["default_mode"] = _default_mode(ctx.precision, want_dla)
    ordered = sorted(plans, key=lambda p: p.mode != trt["default_mode"])
    atomic_write_text(ctx.staging / SCRIPT_NAME, plan.build_script(ordered, trt_version))
    (ctx.staging / SCRIPT_NAME).chmod(0o755)
    files["trtexec_script"] = SCRIPT_NAME
    extra["trt"] = trt
    return files, extra


def tie_ranges(ranges: TensorRanges, groups: list) -> TensorRanges:
    """Ranges with each DLA scale group (Pooling in/out, Concat ins/out) at its largest amax, so
    calib.cache and the QDQ model both carry the scales the DLA's INT8 rules need."""
    amax = {k: ranges.amax(k) for k in ranges.ranges}
    tied = dla.tie_amax(amax, groups)
    return TensorRanges(ranges.method, {k: ((-tied[k], tied[k]) if tied[k] != amax[k] else v)
                                        for k, v in ranges.ranges.items()})


def _default_mode(precision: str, want_dla: bool) -> str:
    if want_dla:
        return "dla0"
    return "int8-qdq" if precision == "int8" else "fp16"


class _ManifestView:
    """The manifest fields plan_for_bundle reads, before the manifest exists."""

    def __init__(self, ctx: ExportContext, files: dict[str, str], trt: dict[str, Any],
                 int8: dict[str, Any] | None = None) -> None:
        from edgereid.export import onnx_tools

        ins, _ = onnx_tools.io_info(ctx.model)
        self.inputs = ins
        self.files = files
        self.extra = {"trt": trt, "int8": int8 or {}}
