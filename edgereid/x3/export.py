"""``reid-export --target x3``: the X3 files of a bundle (called by edgereid.export).

Writes into the bundle being staged: the X3 ONNX (opset 11, static 1x3xHxW, rewritten),
``hb_mapper_config.yaml``, the raw calibration files, ``build_x3.sh``, and ``bpu_report.json``
(+ ``bpu_report.txt``) with the BPU placement before/after the rewrites and the simulated INT8
accuracy. Returns the roles it wrote and the figures for ``manifest["x3"]``.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edgereid.bundle import atomic_write_text, json_text
from edgereid.errors import InputError
from edgereid.lazy import require
from edgereid.preprocess import PreprocessSpec
from edgereid.x3 import config as cfg
from edgereid.x3.cost import X3_ASSUMPTIONS
from edgereid.x3.graph import build_x3_graphs
from edgereid.x3.nv12 import NV12_COLOR_RANGE
from edgereid.x3.ops import BPU, HORIZON_X3_OPS
from edgereid.x3.placement import format_report, placement_report

DEFAULT_OPTIONS = {
    "x3_input": "nv12",
    "x3_calibration": "default",
    "x3_cores": 1,
    "allow_unsupported": False,
    "x3_cal_dtype": "float32",
    "x3_calib_samples": cfg.DEFAULT_CALIB_SAMPLES,
    "x3_simulate": True,
    "batch": None,
}
REPORT_JSON = "bpu_report.json"
REPORT_TEXT = "bpu_report.txt"


def resolve_options(options: Optional[dict]) -> dict:
    """Defaults filled in once (None means default); unknown x3_* keys are an error."""
    given = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = [k for k in given if k.startswith("x3_") and k not in DEFAULT_OPTIONS]
    if unknown:
        valid = sorted(k for k in DEFAULT_OPTIONS if k.startswith("x3_"))
        raise InputError(f"unknown X3 options {unknown}; valid: {valid}.")
    opts = {**DEFAULT_OPTIONS, **given}
    opts["x3_cores"] = int(opts["x3_cores"])
    cfg.check_choice("--x3-input", opts["x3_input"], cfg.X3_INPUT_TYPES)
    cfg.check_choice("--x3-calibration", opts["x3_calibration"], cfg.X3_CALIBRATION_TYPES)
    cfg.check_choice("--x3-cores", opts["x3_cores"], cfg.X3_CORES)
    return opts


def add_x3_files(
    staging: Path,
    onnx_path: Path,
    spec: PreprocessSpec,
    calib_crops: List[np.ndarray],
    holdout_crops: List[np.ndarray],
    holdout_labels: Optional[List[Tuple[int, int]]],
    options: dict,
) -> Tuple[Dict[str, str], dict]:
    """Write the X3 files of a bundle into ``staging``.

    Args:
        staging: the bundle directory being built (paths in the YAML are relative to it).
        onnx_path: the exported, simplified FP32 ONNX (opset <= 17, batch axis 1 or dynamic).
        spec: the bundle's PreprocessSpec.
        calib_crops: BGR uint8 person crops (any size) for calibration; about 100 are used.
        holdout_crops: BGR uint8 crops for the FP32 vs simulated-INT8 report (may be empty).
        holdout_labels: (pid, camera) per holdout crop, or None.
        options: x3_input (nv12|rgb|bgr), x3_calibration (default|kl|max), x3_cores (1|2),
            allow_unsupported (bool), optionally batch (must be 1 or None).

    Returns:
        ({role: relative path}, figures for manifest["x3"]).

    Raises:
        InputError: batch != 1, an operator the X3 cannot run (unless allow_unsupported), bad
            option values, no calibration crops.
    """
    opts = resolve_options(options)
    staging = Path(staging)
    if not calib_crops:
        raise InputError("the X3 export needs calibration crops (--calib-data); received none.")
    graphs = build_x3_graphs(onnx_path, batch=opts["batch"], allow_unsupported=bool(opts["allow_unsupported"]))
    expected = (1, 3, spec.height, spec.width)
    if tuple(graphs.input_shape) != expected:
        raise InputError(
            f"the model input {graphs.input_name!r} is {list(graphs.input_shape)} but the PreprocessSpec "
            f"says {list(expected)}; they must agree."
        )
    before = placement_report(graphs.plain)
    after = placement_report(graphs.x3)

    onnx = require("onnx", "the X3 export")
    onnx.save(graphs.x3, str(staging / cfg.X3_ONNX_NAME))
    config = cfg.hb_mapper_config(
        spec,
        graphs.input_name,
        input_type_rt=opts["x3_input"],
        calibration_type=opts["x3_calibration"],
        core_num=opts["x3_cores"],
        cal_dtype=opts["x3_cal_dtype"],
    )
    atomic_write_text(staging / cfg.CONFIG_NAME, cfg.render_yaml(config))
    picked = [calib_crops[i] for i in cfg.pick_calibration(len(calib_crops), int(opts["x3_calib_samples"]))]
    calib_paths = cfg.write_calibration_data(
        staging / cfg.CALIB_DIR_NAME, spec, picked, opts["x3_cal_dtype"], len(picked)
    )
    script = staging / cfg.BUILD_SCRIPT_NAME
    atomic_write_text(script, cfg.build_script(graphs.input_name, spec))
    os.chmod(script, 0o755)

    accuracy = None
    if opts["x3_simulate"]:
        from edgereid.x3.simulate import accuracy_report, simulate_x3_int8

        cpu_nodes = [n["node"] for n in after["nodes"] if n["device"] != BPU]
        with _quiet_ort_warnings():
            int8, used = simulate_x3_int8(graphs.x3, cpu_nodes, picked, spec, graphs.input_name, opts["x3_calibration"])
        if holdout_crops:
            accuracy = accuracy_report(graphs.x3, int8, holdout_crops, spec, holdout_labels)
            accuracy["calibration"] = opts["x3_calibration"]
            accuracy["range_method"] = used
            accuracy["note"] = (
                "ONNX Runtime simulation (int8 symmetric per-channel weights, per-tensor activations, CPU "
                "nodes float); approximates Horizon's quantizer, see docs/export-x3.md"
            )

    report = {
        "march": cfg.MARCH,
        "rules_sources": [HORIZON_X3_OPS],
        "rewrites": graphs.rewrites,
        "cost_assumptions": X3_ASSUMPTIONS.as_dict(),
        "plain": before,
        "rewritten": after,
        "x3_output_shapes": graphs.output_shapes,
        "int8_simulation": accuracy,
    }
    atomic_write_text(staging / REPORT_JSON, json_text(report, indent=1))
    atomic_write_text(staging / REPORT_TEXT, _report_text(report))

    roles = {
        "x3_onnx": cfg.X3_ONNX_NAME,
        "x3_config": cfg.CONFIG_NAME,
        "x3_calib_dir": cfg.CALIB_DIR_NAME,
        "x3_build_script": cfg.BUILD_SCRIPT_NAME,
        "x3_report": REPORT_JSON,
    }
    figures = {
        "march": cfg.MARCH,
        "input_name": graphs.input_name,
        "input_shape": list(graphs.input_shape),
        "output_shapes": graphs.output_shapes,
        "input_type_rt": opts["x3_input"],
        "input_space_and_range": NV12_COLOR_RANGE if opts["x3_input"] == "nv12" else None,
        "calibration_type": opts["x3_calibration"],
        "core_num": opts["x3_cores"],
        "calibration_samples": len(calib_paths),
        "rewrites": graphs.rewrites,
        "bpu_mac_share_before": before["bpu_mac_share"],
        "bpu_mac_share": after["bpu_mac_share"],
        "cpu_subgraphs_before": before["cpu_subgraphs"],
        "cpu_subgraphs": after["cpu_subgraphs"],
        "cpu_nodes": after["cpu_nodes"],
        "x3_latency_estimate_ms_before": before["latency_estimate"],
        "x3_latency_estimate_ms": after["latency_estimate"],
        "cpu_subgraph_cost_ms": [round(c["est_ms"]["total"], 4) for c in after["cpu_subgraph_costs"]],
        "latency_estimate_note": "host arithmetic from Horizon's published X3 timings, not measured on an X3 "
                                 "(assumptions in the x3_report)",
        "unsupported_nodes": after["unsupported_nodes"],
        "postprocess_on_host": ["reshape to (N, D)", "l2_normalize"],
    }
    if accuracy is not None:
        figures["int8_sim_cosine_min"] = accuracy["cosine_min"]
        figures["int8_sim_cosine_mean"] = accuracy["cosine_mean"]
        for key in ("fp32", "int8_sim"):
            if key in accuracy:
                figures[f"{key}_rank1"] = accuracy[key]["rank1"]
                figures[f"{key}_mAP"] = accuracy[key]["mAP"]
    return roles, figures


def _report_text(report: dict) -> str:
    parts = [
        f"X3 BPU placement (march {report['march']}); rules: {'; '.join(report['rules_sources'])}",
        f"rewrites applied: {report['rewrites']}",
        "",
        format_report(report["plain"], "Plain graph (exported ONNX, batch 1)"),
        format_report(report["rewritten"], "X3 graph (opset 11, after rewrites)"),
    ]
    acc = report.get("int8_simulation")
    if acc:
        line = (
            f"Simulated INT8 vs FP32 on {acc['num_crops']} crops: cosine min {acc['cosine_min']:.4f}, "
            f"mean {acc['cosine_mean']:.4f}"
        )
        if "fp32" in acc:
            line += (
                f"; rank-1 FP32 {acc['fp32']['rank1']:.3f} / INT8 {acc['int8_sim']['rank1']:.3f}, "
                f"mAP FP32 {acc['fp32']['mAP']:.3f} / INT8 {acc['int8_sim']['mAP']:.3f}"
            )
        parts.append(line)
    return "\n".join(parts) + "\n"


@contextmanager
def _quiet_ort_warnings():
    """ONNX Runtime's quantizer logs a 'consider pre-processing' warning on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def x3_files_exist(staging: Path, roles: Dict[str, str]) -> Sequence[str]:
    """Roles whose file is missing (for the export engineer's final check)."""
    return [r for r, rel in roles.items() if not (Path(staging) / rel).exists()]
