"""The machine's FP32 limit and each figure's distance from it.

A matrix-multiply probe measures the peak FP32 FLOP/s this CPU reaches through NumPy's BLAS
(the best of several (n, n) @ (n, n) products, 2 n^3 FLOPs each). A model's compute floor for a
batch is ``MACs x 2 x batch / peak``; ``x_limit`` = measured latency / floor says how far a
backend is from the compute bound (1.0 = at the roofline; memory-bound models sit well above).
MACs are counted from the ONNX graph (Conv, ConvTranspose, Gemm, MatMul and their quantised forms).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from edgereid.errors import BundleError, InputError
from edgereid.onnx_macs import node_macs


def _probe(n: int, repeats: int) -> float:
    """Fastest seconds of one (n, n) @ (n, n) float32 product in this process."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return best


def measure_peak_flops(n: int = 1024, repeats: int = 10, threads: int | None = None) -> Dict[str, Any]:
    """Best FP32 FLOP/s of an (n, n) @ (n, n) matmul over ``repeats`` runs (after one warm-up).

    Args:
        n: matrix size; 1024 takes ~10-50 ms per product on one laptop core.
        repeats: timed products; the fastest counts (a peak, not a typical value).
        threads: BLAS threads. BLAS fixes its thread count when NumPy loads, so a given count
            runs the probe in a fresh Python with ``OPENBLAS/OMP/MKL_NUM_THREADS`` set; None = this
            process's BLAS default. Use the benchmark's thread count so the ratio compares like
            with like.

    Note:
        NumPy's BLAS and ONNX Runtime's MLAS may use different vector units (e.g. AVX2 vs
        AVX-512), so a backend can beat this "peak" (x_limit < 1): read it as a yardstick.
    """
    if threads is None:
        best = _probe(n, repeats)
    else:
        env = dict(os.environ)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(int(threads))
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        code = f"from edgereid.benchmarks.limits import _probe; print(_probe({int(n)}, {int(repeats)}))"
        try:
            res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                 timeout=300, check=True)
            best = float(res.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
            raise InputError(f"the FP32 matmul probe failed in a subprocess ({exc}); pass --no-peak-probe.") from exc
    flops = 2.0 * n**3
    return {"peak_gflops": flops / best / 1e9, "n": n, "best_s": best, "repeats": repeats,
            "threads": threads if threads is not None else "blas default", "dtype": "float32",
            "probe": "numpy matmul"}


def _dims(shape_proto, batch: int) -> List[int] | None:
    dims = []
    for i, d in enumerate(shape_proto.dim):
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif i == 0:
            dims.append(batch)
        else:
            return None
    return dims


def load_onnx_file(onnx: Any, path: str | Path) -> Any:
    """onnx.load with a clear BundleError for a truncated or corrupt file (protobuf raises DecodeError)."""
    try:
        return onnx.load(str(path))
    except Exception as exc:  # google.protobuf.message.DecodeError, or onnx's own errors
        raise BundleError(
            f"{str(path)!r} is not a readable ONNX model ({type(exc).__name__}: {exc}); the file is truncated "
            "or corrupt. Copy the bundle again (check its size) or re-export it."
        ) from exc


def count_onnx_macs(path: str | Path, batch: int = 1) -> int:
    """Multiply-accumulates of one forward pass of an ONNX model at ``batch``.

    Counts Conv/ConvTranspose/QLinearConv/ConvInteger (output elements x Cin/groups x kernel area)
    and Gemm/MatMul/QLinearMatMul/MatMulInteger (output elements x inner dimension). Other ops are
    negligible for ReID CNNs.
    """
    from edgereid.lazy import require

    onnx = require("onnx", "counting MACs of an ONNX model")
    model = load_onnx_file(onnx, path)
    for inp in model.graph.input:  # pin the dynamic batch so shape inference yields numbers
        dims = inp.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = batch
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # onnx raises InferenceError and friends
        raise InputError(f"cannot infer shapes of {path} to count MACs: {exc}") from exc
    shapes: Dict[str, List[int] | None] = {}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        shapes[vi.name] = _dims(vi.type.tensor_type.shape, batch)
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    total = 0
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        total += node_macs(node.op_type, attrs, [shapes.get(x) for x in node.input], shapes.get(node.output[0]))
    return total


def limit_figures(latency_ms: float, macs_per_crop: int, batch_size: int, peak_gflops: float) -> Dict[str, float]:
    """Compute floor and distance from it for one measured latency.

    Returns:
        ``floor_ms`` (MACs x 2 x batch / peak), ``x_limit`` (latency / floor, >= 1 in principle)
        and ``achieved_gflops`` (MACs x 2 x batch / latency).
    """
    flops = 2.0 * macs_per_crop * batch_size
    floor_ms = flops / (peak_gflops * 1e9) * 1000.0
    return {"floor_ms": floor_ms, "x_limit": latency_ms / floor_ms if floor_ms > 0 else float("nan"),
            "achieved_gflops": flops / (latency_ms / 1000.0) / 1e9 if latency_ms > 0 else float("nan")}
