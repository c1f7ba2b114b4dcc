"""The small target registry: one module per target, each owning its options and defaults.

A target adds its files to the staging bundle and returns ``(files, extra)``: role -> relative
path for the manifest, and figures to merge into it. Targets are resolved by module path so
that importing this module imports none of them (and x3 may be absent from a build).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgereid.errors import InputError
from edgereid.export.source import ModelSource
from edgereid.jetson.plan import BatchProfile

TARGETS = {
    "cpu": "edgereid.export.target_cpu:add_files",
    "xavier": "edgereid.export.target_xavier:add_files",
    "x3": "edgereid.export.target_x3:add_files",
}

# Precision each target builds when none is asked for.
DEFAULT_PRECISION = {"cpu": "fp32", "xavier": "fp16", "x3": "int8"}
PRECISIONS = {"cpu": ("fp32", "int8"), "xavier": ("fp16", "int8"), "x3": ("int8",)}


@dataclass
class ExportContext:
    """Everything a target needs, resolved once by ``export_bundle``.

    Attributes:
        staging: the temporary bundle directory (renamed into place on success).
        model_path: ``staging / "model.onnx"``, simplified and checked.
        model: its ModelProto.
        src: the model source (spec, postprocess, torch model or foreign ONNX).
        precision: resolved precision.
        profile: batch profile (static when min == opt == max).
        crops: CropSet or None (no calibration data).
        options: target options (calib_method, op_types, trt_version, dla, x3_*, progress, demo).
    """

    staging: Path
    model_path: Path
    model: Any
    src: ModelSource
    precision: str
    profile: BatchProfile
    crops: Any = None
    options: dict[str, Any] = field(default_factory=dict)


def check_target(target: str, precision: str | None) -> str:
    """The resolved precision of ``target``; a clear error for unknown combinations."""
    if target not in TARGETS:
        raise InputError(f"unknown --target {target!r}; valid: {sorted(TARGETS)}.")
    precision = precision or DEFAULT_PRECISION[target]
    if precision not in PRECISIONS[target]:
        raise InputError(
            f"--target {target} builds {list(PRECISIONS[target])}, not {precision!r}."
        )
    return precision


def get_target(target: str) -> Callable[[ExportContext], tuple[dict[str, str], dict[str, Any]]]:
    module, attr = TARGETS[target].split(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise InputError(f"--target {target} is not available in this build ({exc}).") from exc
