"""--target x3: hands over to edgereid.x3.export (owned by the X3 target), if present."""

from __future__ import annotations

import importlib
from typing import Any

from edgereid.errors import InputError
from edgereid.export.targets import ExportContext


def x3_entry():
    """``edgereid.x3.export.add_x3_files`` or a clear error (checked before any export work)."""
    try:
        return importlib.import_module("edgereid.x3.export").add_x3_files
    except (ImportError, AttributeError) as exc:
        raise InputError(
            f"--target x3 is not available in this build: edgereid.x3.export.add_x3_files is missing ({exc})."
        ) from exc


def add_files(ctx: ExportContext) -> tuple[dict[str, str], dict[str, Any]]:
    add_x3_files = x3_entry()
    crops = ctx.crops
    options = {k: ctx.options.get(k) for k in ("x3_input", "x3_calibration", "x3_cores", "allow_unsupported")}
    options["batch"] = ctx.profile.min if ctx.profile.static else None
    files, extra = add_x3_files(
        ctx.staging,
        ctx.model_path,
        ctx.src.spec,
        list(crops.calib) if crops else [],
        list(crops.holdout) if crops else [],
        crops.holdout_labels if crops else None,
        options,
    )
    return dict(files), {"x3": dict(extra)}
