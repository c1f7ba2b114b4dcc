"""A simulated X3 INT8 model run in ONNX Runtime, and its accuracy against FP32.

What it models: symmetric int8 per-channel weights, symmetric int8 per-tensor activations,
the nodes that fall back to the X3's CPU left in float (``nodes_to_exclude``). It lives in an
opset-13 copy of the X3 graph because ONNX's per-channel QuantizeLinear needs opset 13.
What it does not model: Horizon's own quantizer (int8 input with offset 128 after the NV12 ->
RGB conversion, LUT sigmoid, int8 / int32 outputs, its calibration search). It approximates;
the toolchain's ``<prefix>_quantized_model.onnx`` is the real reference (docs/export-x3.md).
The QDQ model runs as float fake-quantization (:mod:`edgereid.calibration.fakequant`), which is
what the BPU's int32 accumulation computes, never in ONNX Runtime's host-dependent integer kernels.

hb_mapper calibration -> ours: ``default`` -> percentile (99.999 %), ``kl`` -> entropy,
``max`` -> min/max; ranges come from :func:`edgereid.calibration.ranges.calibrate_ranges`,
which feeds ONNX Runtime's calibrators in memory-bounded chunks.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from edgereid.lazy import require
from edgereid.preprocess import PreprocessSpec

X3_TO_ORT_CALIBRATION = {"default": "percentile", "kl": "entropy", "max": "minmax"}


def to_opset13(model):
    """Opset-13 copy of an opset-11 X3 graph (node names kept)."""
    from onnx import version_converter

    out = version_converter.convert_version(model, 13)
    out.ir_version = max(out.ir_version, 7)
    return out


def simulate_x3_int8(
    x3_model,
    cpu_nodes: Sequence[str],
    calib_crops: Sequence[np.ndarray],
    spec: PreprocessSpec,
    input_name: str,
    calibration: str = "default",
) -> Tuple[object, str]:
    """Quantize the X3 graph the way the X3 BPU runs it (approximately).

    Args:
        x3_model: the opset-11 X3 graph (onnx.ModelProto), nodes named.
        cpu_nodes: names of the nodes the placement report put on the CPU (kept float).
        calib_crops: BGR uint8 crops for the activation ranges.
        spec: the bundle's PreprocessSpec (float input = what hb_mapper's mean/scale produce).
        input_name: the model input.
        calibration: hb_mapper's calibration_type (default | kl | max).

    Returns:
        (QDQ onnx.ModelProto at opset 13, the range method used). Histogram methods fail on
        near-constant tensors (numpy cannot bin a range of ~1e-38, as in untrained weights);
        then min/max ranges are used and the method says so.
    """
    onnx = require("onnx", "the X3 INT8 simulation")
    from edgereid.calibration.qdq import quantize_qdq
    from edgereid.calibration.ranges import calibrate_ranges
    from edgereid.calibration.reader import CropBatches

    method = X3_TO_ORT_CALIBRATION[calibration]
    with tempfile.TemporaryDirectory(prefix="edgereid-x3sim-") as tmp:
        fp32 = Path(tmp) / "x3_fp32_opset13.onnx"
        onnx.save(to_opset13(x3_model), str(fp32))
        batches = CropBatches(list(calib_crops), spec, input_name, batch=1)
        try:
            ranges = calibrate_ranges(fp32, batches, method=method, symmetric=True, progress=False)
        except ValueError:
            method = "minmax"
            ranges = calibrate_ranges(fp32, batches, method=method, symmetric=True, progress=False)
        out = quantize_qdq(fp32, Path(tmp) / "x3_int8_sim.onnx", ranges, flavour="x3", op_types=None,
                           nodes_to_exclude=list(cpu_nodes))
        return onnx.load(str(out)), method


def run_batch1(model, batch: np.ndarray) -> np.ndarray:
    """Run a static-batch-1 model (path or ModelProto) over (N, 3, H, W) one sample at a time -> (N, D)."""
    from edgereid.calibration.fakequant import fake_quant_session

    # A QDQ model runs as float fake-quantization (what the BPU's int32 accumulation computes),
    # never in ORT's host-dependent integer kernels; a float model is unaffected.
    session = fake_quant_session(model)
    name = session.get_inputs()[0].name
    outs = [session.run(None, {name: batch[i : i + 1]})[0].reshape(1, -1) for i in range(len(batch))]
    return np.concatenate(outs, 0).astype(np.float32) if outs else np.zeros((0, 0), np.float32)


def accuracy_report(
    fp32_model,
    int8_model,
    crops: Sequence[np.ndarray],
    spec: PreprocessSpec,
    labels: Optional[Sequence[Tuple[int, int]]] = None,
) -> dict:
    """FP32 vs simulated INT8 on held-out crops: cosine per crop, rank-1/mAP when labelled."""
    batch = spec(list(crops))
    f32 = run_batch1(fp32_model, batch)
    i8 = run_batch1(int8_model, batch)
    from edgereid.evaluation.metrics import labelled_retrieval, rowwise_cosine

    cos = rowwise_cosine(f32, i8)
    report: dict = {
        "num_crops": int(len(crops)),
        "cosine_min": float(cos.min()) if len(cos) else None,
        "cosine_mean": float(cos.mean()) if len(cos) else None,
        "cosine_per_crop": [round(float(c), 6) for c in cos],
    }
    if labels is not None and len(labels) == len(crops):
        fp, q8 = labelled_retrieval(f32, labels), labelled_retrieval(i8, labels)
        if fp is not None and q8 is not None:
            report["fp32"] = fp
            report["int8_sim"] = q8
            report["rank1_drop_points"] = 100.0 * (fp["rank1"] - q8["rank1"])
    return report


def quantized_nodes(model) -> List[str]:
    """Names of nodes that read a DequantizeLinear output (i.e. run in INT8 in the simulation)."""
    deq = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    qdq = ("QuantizeLinear", "DequantizeLinear")
    return [n.name for n in model.graph.node if n.op_type not in qdq and any(x in deq for x in n.input)]
