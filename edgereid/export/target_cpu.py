"""--target cpu: model.onnx for ONNX Runtime; with --int8 a u8s8 QDQ model fitted to the CPU's ISA.

ONNX Runtime's u8s8 kernels on x86 CPUs without VNNI (AVX2 only) multiply with ``vpmaddubsw``,
whose int16 pair sums saturate with 8-bit weights; ORT's quantization guide recommends
``reduce_range`` (7-bit weights) there. Measured on OSNet / PKU-Reid on an AVX2-only host
(benchmarks/results/ort_int8.md): u8s8 lost 10.9 rank-1 points in ORT's kernels (2.0 as exact
fake-quantization), u8s8 with reduce_range 2.8 in both, so reduce_range is chosen for AVX2 and for
an x86 host whose ISA cannot be read. VNNI (``vpdpbusd``, int32 accumulation) and ARM kernels
(widening multiply-accumulate) do not saturate and keep 8-bit weights.
"""

from __future__ import annotations

from typing import Any

from edgereid.errors import InputError
from edgereid.export.int8 import quantize_with_reports
from edgereid.export.targets import ExportContext

INT8_CPU_NAME = "model.int8.cpu.onnx"
CPU_ISA_CHOICES = ("auto", "avx512_vnni", "avx_vnni", "avx2", "asimddp", "neon")
SATURATING_ISAS = ("avx2",)


def resolve_cpu_isa(choice: str = "auto", host: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ISA a --target cpu --int8 bundle is built for, and whether it needs reduce_range.

    Args:
        choice: ``auto`` (this host) or one of :data:`CPU_ISA_CHOICES`.
        host: :func:`edgereid.benchmarks.conditions.cpu_isa` of this host (None = read it).

    Returns:
        ``{"cpu_isa", "host_cpu_isa", "reduce_range"}``.
    """
    if choice not in CPU_ISA_CHOICES:
        raise InputError(f"--cpu-isa must be one of {list(CPU_ISA_CHOICES)}, received {choice!r}.")
    if host is None:
        from edgereid.benchmarks.conditions import cpu_isa

        host = cpu_isa()
    isa = host.get("isa") if choice == "auto" else choice
    if isa is None:  # unreadable: saturation-safe on x86, harmless (one bit of weight precision) elsewhere
        reduce = True
    else:
        reduce = isa in SATURATING_ISAS
    return {"cpu_isa": isa, "host_cpu_isa": host.get("isa"), "reduce_range": reduce}


def add_files(ctx: ExportContext) -> tuple[dict[str, str], dict[str, Any]]:
    if ctx.precision != "int8":
        return {}, {}
    _, files, extra = quantize_with_reports(ctx, "cpu", INT8_CPU_NAME)
    files["onnx_int8_cpu"] = INT8_CPU_NAME
    return files, extra
