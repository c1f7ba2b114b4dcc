"""ONNX steps shared by every target: torch export, foreign-model intake, simplify, check.

Why the classic exporter: torch's dynamo exporter always writes opset 18, and TensorRT 8.5.2
(JetPack 5.1.x) reads up to 17; per-channel QDQ needs at least 13. A foreign model below 13 is
converted up first (ONNX Runtime's quantizer silently writes an invalid model otherwise).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from edgereid.errors import InputError
from edgereid.lazy import require

LOG = logging.getLogger(__name__)

MIN_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear (axis attribute)
MAX_OPSET = 17  # TensorRT 8.5.2's ONNX parser
DEFAULT_OPSET = 17
BATCH_AXIS_NAME = "batch"


def check_opset(opset: int) -> int:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise InputError(
            f"--opset must be between {MIN_OPSET} (per-channel QDQ) and {MAX_OPSET} (TensorRT 8.5), "
            f"received {opset}."
        )
    return opset


def export_torch(
    model: Any,
    path: str | Path,
    height: int,
    width: int,
    batch: int = 1,
    dynamic_batch: bool = False,
    opset: int = DEFAULT_OPSET,
    input_name: str = "images",
    output_name: str = "embedding",
) -> Path:
    """Export an eval-mode module with the classic (TorchScript) exporter, one input, one output.

    Args:
        batch: static batch, also the example batch when ``dynamic_batch``.
        dynamic_batch: mark axis 0 of input and output symbolic (``"batch"``).
    """
    torch = require("torch", "ONNX export")
    check_opset(opset)
    example = torch.zeros(max(1, batch), 3, height, width)
    axes = {input_name: {0: BATCH_AXIS_NAME}, output_name: {0: BATCH_AXIS_NAME}} if dynamic_batch else None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about python ints: shapes are static here
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return Path(path)


def load_foreign_onnx(path: str | Path, input_name: str | None = None) -> Any:
    """Read a user's ONNX model, check it has one usable image input, upgrade it to opset >= 13.

    Raises:
        InputError: unreadable file, no/ambiguous input, named input absent, not (N, 3, H, W).
    """
    onnx = require("onnx", "reading an ONNX model")
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--onnx {str(path)!r} is a directory; expected an ONNX model file (.onnx).")
    if not path.is_file():
        raise InputError(f"--onnx {str(path)!r} does not exist.")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise InputError(f"--onnx {str(path)!r} is not a readable ONNX model ({exc}).") from exc
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    names = [i.name for i in inputs]
    if input_name is not None and input_name not in names:
        raise InputError(
            f"--onnx {str(path)!r} has no input named {input_name!r}; its inputs are {names}. "
            "Pass --input-name with one of them."
        )
    if input_name is None:
        if len(inputs) != 1:
            raise InputError(
                f"--onnx {str(path)!r} has {len(inputs)} inputs {names}; an embedder has exactly one image "
                "input. Pass --input-name to choose it."
            )
        input_name = names[0]
    shape = input_shape(model, input_name)
    if len(shape) != 4 or shape[1] != 3 or not isinstance(shape[2], int) or not isinstance(shape[3], int):
        raise InputError(
            f"--onnx {str(path)!r}: input {input_name!r} has shape {shape}; expected (N, 3, H, W) with a "
            "fixed H and W."
        )
    if len(model.graph.output) != 1:
        raise InputError(
            f"--onnx {str(path)!r} has {len(model.graph.output)} outputs; an embedder has one (the embedding)."
        )
    return upgrade_opset(model)


def opset_of(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def upgrade_opset(model: Any, target: int = MIN_OPSET) -> Any:
    """Convert a model below ``target`` up to it (per-channel QDQ needs 13); others unchanged."""
    onnx = require("onnx", "converting the opset")
    current = opset_of(model)
    if current >= target:
        return model
    if current > MAX_OPSET:
        raise InputError(f"the ONNX model has opset {current}; TensorRT 8.5 reads at most {MAX_OPSET}.")
    from onnx import version_converter

    try:
        upgraded = version_converter.convert_version(model, target)
    except Exception as exc:
        raise InputError(f"cannot convert the ONNX model from opset {current} to {target}: {exc}") from exc
    onnx.checker.check_model(upgraded)
    LOG.info("converted the ONNX model from opset %d to %d", current, target)
    return upgraded


def set_batch(model: Any, batch: int | None) -> Any:
    """Make axis 0 of the graph input/output static ``batch`` or symbolic (None) in place."""
    for vi in list(model.graph.input[:1]) + list(model.graph.output[:1]):
        dim = vi.type.tensor_type.shape.dim[0]
        if batch is None:
            dim.dim_param = BATCH_AXIS_NAME
        else:
            dim.dim_value = int(batch)
    return model


def simplify(path: str | Path) -> Path:
    """Simplify in place with onnxslim (constant folding, dead nodes, shape ops)."""
    onnx = require("onnx", "simplifying")
    onnxslim = require("onnxslim", "simplifying the ONNX model")
    model = onnx.load(str(path))
    slim = onnxslim.slim(model)
    onnx.save(slim if slim is not None else model, str(path))
    return Path(path)


def check(path: str | Path, max_opset: int = MAX_OPSET) -> Any:
    """onnx.checker (full, with shape inference) plus our own contract: opset, one output."""
    onnx = require("onnx", "checking the ONNX model")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    opset = opset_of(model)
    if not MIN_OPSET <= opset <= max_opset:
        raise InputError(f"{path}: opset {opset} is outside [{MIN_OPSET}, {max_opset}].")
    if len(model.graph.output) != 1:
        raise InputError(f"{path}: expected one output, found {len(model.graph.output)}.")
    return model


def input_shape(model: Any, name: str) -> list[int | str]:
    for vi in model.graph.input:
        if vi.name == name:
            return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                    for d in vi.type.tensor_type.shape.dim]
    raise InputError(f"the ONNX model has no input {name!r}.")


def io_info(model: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Manifest ``inputs`` / ``outputs``: name, shape (int or symbolic name), dtype."""
    onnx = require("onnx", "reading model I/O")
    inits = {i.name for i in model.graph.initializer}

    def describe(vi) -> dict[str, Any]:
        t = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
        return {"name": vi.name, "shape": shape, "dtype": dtype}

    ins = [describe(vi) for vi in model.graph.input if vi.name not in inits]
    return ins, [describe(vi) for vi in model.graph.output]
