"""Per-layer INT8 sensitivity: where along the network the quantization noise comes from.

For every quantized node (Conv/Gemm/MatMul) we run the FP32 model and the QDQ model on a few
crops, read the node's output tensor from both (the QDQ model keeps the original tensor names)
and compute the signal-to-quantization-noise ratio (SQNR, dB). ``added_noise_db`` is the drop
from the node's input SQNR to its output SQNR: the noise this layer adds. We compute it
ourselves instead of ORT's qdq_loss_debug because that matcher relies on ORT's internal QDQ
tensor-name suffixes, which ``DedicatedQDQPair`` (needed for TensorRT) changes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from edgereid.calibration.fakequant import fake_quant_session_with_outputs
from edgereid.lazy import require


def sqnr_db(reference: Sequence[np.ndarray], noisy: Sequence[np.ndarray]) -> float:
    """10*log10(sum ref^2 / sum (ref - noisy)^2) over all batches; inf when identical."""
    sig = sum(float(np.square(np.asarray(r, np.float64)).sum()) for r in reference)
    noise = sum(float(np.square(np.asarray(r, np.float64) - np.asarray(n, np.float64)).sum())
                for r, n in zip(reference, noisy))
    if noise == 0.0:
        return math.inf
    if sig == 0.0:
        return -math.inf
    return 10.0 * math.log10(sig / noise)


def _run_with_outputs(model_path: Path, names: list[str], feeds: Iterable[dict[str, np.ndarray]]
                      ) -> dict[str, list[np.ndarray]]:
    onnx = require("onnx", "the sensitivity report")
    # QDQ as float fake-quantization: the device's figure
    session = fake_quant_session_with_outputs(onnx.load(str(model_path)), names)
    out: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for feed in feeds:
        for name, value in zip(names, session.run(names, feed)):
            out[name].append(value)
    return out


def sensitivity_report(
    float_path: str | Path,
    qdq_path: str | Path,
    feeds: Sequence[dict[str, np.ndarray]],
    op_types: Sequence[str] = ("Conv", "Gemm", "MatMul"),
) -> dict[str, Any]:
    """Per quantized layer: output SQNR and the noise it adds, worst first.

    Returns:
        ``{"layers": [{"node", "op_type", "output", "sqnr_db", "input_sqnr_db", "added_noise_db"}],
        "output_sqnr_db", "feeds"}``; ``layers`` is sorted by ``added_noise_db``, largest first.
    """
    onnx = require("onnx", "the sensitivity report")
    fmodel = onnx.load(str(float_path))
    qnames = {o for n in onnx.load(str(qdq_path)).graph.node for o in n.output}
    nodes = [n for n in fmodel.graph.node if n.op_type in op_types and n.output[0] in qnames]
    inputs = {n.input[0] for n in nodes}
    graph_out = fmodel.graph.output[0].name
    names = sorted({n.output[0] for n in nodes} | {t for t in inputs if t in qnames} | {graph_out})
    ref = _run_with_outputs(Path(float_path), names, feeds)
    got = _run_with_outputs(Path(qdq_path), names, feeds)
    sq = {name: sqnr_db(ref[name], got[name]) for name in names}
    layers = []
    for n in nodes:
        s_in = sq.get(n.input[0], math.inf)
        s_out = sq[n.output[0]]
        added = (s_in - s_out) if math.isfinite(s_in) and math.isfinite(s_out) else math.nan
        layers.append({
            "node": n.name, "op_type": n.op_type, "output": n.output[0],
            "sqnr_db": _finite(s_out), "input_sqnr_db": _finite(s_in), "added_noise_db": _finite(added),
        })
    layers.sort(key=lambda d: -(d["added_noise_db"] if d["added_noise_db"] is not None else -1e9))
    # layers whose input is the graph input have no "added" figure: ranked by output SQNR last
    return {"layers": layers, "output_sqnr_db": _finite(sq[graph_out]), "feeds": len(feeds)}


def format_table(report: dict[str, Any], top: int = 15) -> str:
    """A readable table of the ``top`` noisiest layers (markdown)."""
    lines = [
        f"output SQNR: {report['output_sqnr_db']} dB over {report['feeds']} feeds",
        "",
        "| layer | op | output SQNR dB | added noise dB |",
        "|---|---|---|---|",
    ]
    for d in report["layers"][:top]:
        lines.append(f"| {d['node']} | {d['op_type']} | {d['sqnr_db']} | {d['added_noise_db']} |")
    return "\n".join(lines) + "\n"


def _finite(x: float) -> float | None:
    return round(x, 3) if math.isfinite(x) else None  # JSON has no inf/nan
