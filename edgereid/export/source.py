"""Where an export starts: an architecture + checkpoint (PyTorch) or a foreign ONNX model.

Everything after this point (ONNX writing, parity, calibration, targets) sees one
:class:`ModelSource`, so a user's OSNet export gets the same INT8, cache and reports as RGA.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from edgereid.bundle import sha256_file
from edgereid.errors import InputError
from edgereid.export import onnx_tools
from edgereid.lazy import require
from edgereid.preprocess import IMAGENET_MEAN, IMAGENET_STD, PreprocessSpec

LOG = logging.getLogger(__name__)

INPUT_NAME = "images"
OUTPUT_NAME = "embedding"


@dataclass
class ModelSource:
    """A model ready to be written as ``model.onnx``.

    Attributes:
        arch: ``rga_sc`` | ``rga_s`` | ``rga_c`` | ``rrid`` | ``onnx``.
        spec: preprocessing contract.
        postprocess: ``{"l2_normalize", "flip_average"}`` for the runtime.
        source: manifest ``source`` entry (path, sha256, trained, folded).
        torch_model: eval-mode module (None for a foreign ONNX model).
        onnx_model: the foreign ModelProto, upgraded to opset >= 13 (None for torch sources).
        input_name, output_name: graph I/O names.
    """

    arch: str
    spec: PreprocessSpec
    postprocess: dict[str, bool]
    source: dict[str, Any]
    torch_model: Any = None
    onnx_model: Any = None
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    notes: list[str] = field(default_factory=list)

    @property
    def trained(self) -> bool:
        return bool(self.source.get("trained", True))


def from_arch(arch: str, checkpoint: str | None = None) -> ModelSource:
    """Load ``arch`` (RGA folded: same outputs, ~1.8x fewer MACs) with its official preprocessing.

    Raises:
        InputError / CheckpointError: unknown arch, missing, corrupt or mismatched checkpoint.
    """
    from edgereid import models

    models.check_arch(arch)
    options = {"folded": True} if arch.startswith("rga") else {}
    if checkpoint is not None and not Path(checkpoint).is_file():
        from edgereid.errors import CheckpointError

        raise CheckpointError(f"--checkpoint {checkpoint!r} does not exist (expected an official .pth/.pth.tar).")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", models.UntrainedWeightsWarning)
        model = models.load_model(arch, checkpoint, **options)
    notes = [str(w.message) for w in caught if issubclass(w.category, models.UntrainedWeightsWarning)]
    for note in notes:
        LOG.warning("%s", note)
    src = {
        "path": str(checkpoint) if checkpoint else None,
        "sha256": sha256_file(checkpoint) if checkpoint else None,
        "trained": checkpoint is not None,
        "folded": bool(options.get("folded", False)),
    }
    if checkpoint is None:
        src["warning"] = "UNTRAINED deterministic weights (seed 0): embeddings do not identify people"
    return ModelSource(
        arch=arch,
        spec=models.preprocess_for(arch),
        postprocess=models.postprocess_for(arch),
        source=src,
        torch_model=model,
        notes=notes,
    )


def from_onnx(
    path: str | Path,
    input_name: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    bgr: bool = False,
    flip_average: bool = False,
) -> ModelSource:
    """A foreign ReID ONNX model: input size read from the model, RGB + ImageNet mean/std by default."""
    model = onnx_tools.load_foreign_onnx(path, input_name)
    inits = {i.name for i in model.graph.initializer}
    name = input_name or next(i.name for i in model.graph.input if i.name not in inits)
    shape = onnx_tools.input_shape(model, name)
    for label, values in (("--mean", mean), ("--std", std)):
        if values is not None and len(values) != 3:
            raise InputError(f"{label} needs 3 values (one per channel), received {list(values)}.")
    spec = PreprocessSpec(
        height=int(shape[2]),
        width=int(shape[3]),
        color="bgr" if bgr else "rgb",
        mean=tuple(mean) if mean is not None else IMAGENET_MEAN,
        std=tuple(std) if std is not None else IMAGENET_STD,
    )
    return ModelSource(
        arch="onnx",
        spec=spec,
        postprocess={"l2_normalize": True, "flip_average": bool(flip_average)},
        source={"path": str(path), "sha256": sha256_file(path), "trained": True,
                "opset_in": onnx_tools.opset_of(_load(path))},
        onnx_model=model,
        input_name=name,
        output_name=model.graph.output[0].name,
    )


def write_model_onnx(
    src: ModelSource,
    path: str | Path,
    batch: int = 1,
    dynamic_batch: bool = True,
    opset: int = onnx_tools.DEFAULT_OPSET,
) -> Any:
    """Write the simplified, checked ``model.onnx`` of ``src``; returns its ModelProto."""
    onnx = require("onnx", "writing model.onnx")
    path = Path(path)
    if src.torch_model is not None:
        h, w = src.spec.height, src.spec.width
        try:
            onnx_tools.export_torch(src.torch_model, path, h, w, batch, dynamic_batch, opset,
                                    src.input_name, src.output_name)
        except Exception as exc:  # torch raises SymbolicValueError for shape-derived kernels
            if not dynamic_batch or "not constant" not in str(exc):
                raise
            # A pooling kernel computed from the feature size cannot be traced with a symbolic
            # batch; export at a static batch (kernels become constants) and free axis 0 after.
            LOG.info("exporting at a static batch, then marking axis 0 dynamic (%s)", type(exc).__name__)
            onnx_tools.export_torch(src.torch_model, path, h, w, max(1, batch), False, opset,
                                    src.input_name, src.output_name)
            model = onnx.load(str(path))
            onnx_tools.set_batch(model, None)
            del model.graph.value_info[:]
            onnx.save(model, str(path))
    else:
        model = onnx.ModelProto()
        model.CopyFrom(src.onnx_model)
        onnx_tools.set_batch(model, None if dynamic_batch else batch)
        del model.graph.value_info[:]
        onnx.save(model, str(path))
    onnx_tools.simplify(path)
    return onnx_tools.check(path)


def _load(path: str | Path):
    onnx = require("onnx", "reading an ONNX model")
    return onnx.load(str(path), load_external_data=False)
