"""``reid-bench check``: run a backend on the bundle's golden crops and judge it against FP32.

The first thing to run after ``build_engine.sh`` (Jetson) or ``build_x3.sh`` + copying the .bin
(X3): it proves the engine or .bin, the runtime libraries and the preprocessing all agree with
what was exported, on real crops, in seconds. Exit 0 within the bundle's tolerance, 1 outside.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from edgereid.bundle import Bundle
from edgereid.check.golden import read_golden, rowwise_cosine
from edgereid.errors import EdgeReidError

SCHEMA = "edgereid.check/1"


def engine_details(bundle: Bundle, backend: str) -> Optional[Dict[str, Any]]:
    """What the device built, where the bundle holds it: TensorRT layer file summary, X3 placement."""
    if backend == "trt":
        try:
            from edgereid.jetson.layers import compare_bundle_layers

            rep = compare_bundle_layers(bundle)
        except EdgeReidError as exc:
            return {"layers": None, "note": str(exc)}
        keys = ("mode", "layers", "dla_layers", "gpu_layers", "precision_counts", "intended_precision",
                "placement_mismatches", "wider_than_intended")
        return {k: rep[k] for k in keys if k in rep}
    if backend == "bpu":
        x3 = bundle.manifest.extra.get("x3") or {}
        keys = ("march", "bpu_mac_share", "cpu_nodes", "input_type_rt")
        return {k: x3[k] for k in keys if k in x3} or None
    return None


def check_bundle(bundle: Bundle | str, backend: str = "auto", threads: int | None = None,
                 runner: Any = None) -> Dict[str, Any]:
    """Per-crop cosine of ``backend`` against the golden FP32 (and simulated INT8) embeddings.

    Args:
        runner: an embedder to use instead of opening ``backend`` (tests, custom backends).

    Returns:
        The report; ``report["pass"]`` is the verdict.
    """
    from edgereid.runtime.backends import backend_precision, open_embedder, resolve_backend

    if not isinstance(bundle, Bundle):
        bundle = Bundle.load(bundle)
    golden = read_golden(bundle)
    name = resolve_backend(bundle, backend)
    precision = backend_precision(bundle, name)
    tolerance = golden.tolerance(precision)
    runner = runner if runner is not None else open_embedder(bundle, name, threads)
    active = runner.is_active
    if not active:
        runner.activate()
    try:
        emb = np.asarray(runner.embed(list(golden.crops)), np.float32)
    finally:
        if not active:
            runner.deactivate()
    report: Dict[str, Any] = {
        "schema": SCHEMA, "bundle": str(bundle.root), "backend": name, "runner": getattr(runner, "name", name),
        "precision": precision, "tolerance_cosine_min": tolerance, "crops": int(len(golden.crops)),
        "inputs": golden.info.get("inputs"), "expected_int8_sim": golden.info.get("int8_sim"),
    }
    if emb.shape != golden.fp32.shape:
        report.update({"pass": False, "reason": f"embedding shape {tuple(emb.shape)} differs from the golden "
                                                f"{tuple(golden.fp32.shape)}: not the exported model"})
        return report
    cos = rowwise_cosine(emb, golden.fp32)
    report["cosine_vs_fp32"] = [round(float(c), 6) for c in cos]
    report["cosine_min"] = round(float(cos.min()), 6)
    if golden.int8_sim is not None:
        sim = rowwise_cosine(emb, golden.int8_sim)
        report["cosine_vs_int8_sim"] = [round(float(c), 6) for c in sim]
    report["engine"] = engine_details(bundle, name)
    report["pass"] = bool(cos.min() >= tolerance)
    if not report["pass"]:
        worst = int(np.argmin(cos))
        report["reason"] = (f"crop {worst}: cosine {cos[worst]:.4f} vs FP32 is below the {precision} tolerance "
                            f"{tolerance}; the engine/.bin, the runtime or the preprocessing differs from the export")
    return report


def check_markdown(report: Dict[str, Any]) -> str:
    lines = [f"reid-bench check: {report['bundle']} on {report['runner']} ({report['precision']}), "
             f"{report['crops']} golden crops ({report.get('inputs')})"]
    fp32 = report.get("cosine_vs_fp32")
    if fp32 is not None:
        sim = report.get("cosine_vs_int8_sim") or [None] * len(fp32)
        lines.append("| crop | cosine vs FP32 | cosine vs simulated INT8 |")
        lines.append("|---|---|---|")
        for i, (a, b) in enumerate(zip(fp32, sim)):
            lines.append(f"| {i} | {a:.5f} | {'-' if b is None else f'{b:.5f}'} |")
    exp = report.get("expected_int8_sim")
    if exp:
        lines.append(f"simulated INT8 at export: cosine min {exp.get('cosine_min')} vs FP32")
    engine = report.get("engine")
    if engine:
        lines.append(f"engine: {json.dumps(engine, sort_keys=True)}")
    verdict = "PASS" if report["pass"] else "FAIL"
    lines.append(f"{verdict}: cosine min {report.get('cosine_min')} (tolerance {report['tolerance_cosine_min']})"
                 + ("" if report["pass"] else f"; {report.get('reason')}"))
    return "\n".join(lines) + "\n"


def write_report(report: Dict[str, Any], out: Path) -> None:
    from edgereid.bundle import atomic_write_text

    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
