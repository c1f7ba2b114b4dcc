"""--target cpu: model.onnx for ONNX Runtime; with --int8 a u8s8 QDQ model (fast on VNNI CPUs)."""

from __future__ import annotations

from typing import Any

from edgereid.export.int8 import quantize_with_reports
from edgereid.export.targets import ExportContext

INT8_CPU_NAME = "model.int8.cpu.onnx"


def add_files(ctx: ExportContext) -> tuple[dict[str, str], dict[str, Any]]:
    if ctx.precision != "int8":
        return {}, {}
    _, files, extra = quantize_with_reports(ctx, "cpu", INT8_CPU_NAME)
    files["onnx_int8_cpu"] = INT8_CPU_NAME
    return files, extra
