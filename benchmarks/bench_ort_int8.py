"""INT8 in ONNX Runtime on this CPU: accuracy of the quantization choices, and latency.

1. ``--accuracy``: on the shared OSNet and PKU-Reid (camera 1 query, camera 2 gallery), calibrate on
   half of the identities and score the other half; every (op set, calibration method) pair. This
   is the measurement behind the defaults in edgereid/calibration/qdq.py.
2. ``--latency``: FP32 vs u8s8 vs s8s8 QDQ latency of OSNet and the folded RGA-SC, batch 1,
   measured interleaved in one run (round-robin, median of the rounds).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ort_int8.py --accuracy --latency
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1].parent / "shared" / "assets"
OSNET = ASSETS / "reid" / "osnet_x0_25_msmt17.onnx"
PKU = ASSETS / "reid_data" / "pku_reid"


def accuracy_sweep(calib_size: int, seed: int) -> list[dict]:
    from edgereid.calibration.accuracy import accuracy_report
    from edgereid.calibration.crops import load_crop_dir
    from edgereid.calibration.qdq import quantize_qdq
    from edgereid.calibration.ranges import calibrate_ranges
    from edgereid.calibration.reader import CropBatches
    from edgereid.export import onnx_tools, source
    from edgereid.runtime.embedder import OnnxruntimeEmbedder

    crops = load_crop_dir(PKU, calib_size, seed=seed, holdout=0.5, max_holdout=10_000)
    src = source.from_onnx(OSNET)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.onnx"
        source.write_model_onnx(src, fp32, 1, True, onnx_tools.DEFAULT_OPSET)
        batches = CropBatches(crops.calib, src.spec, src.input_name, batch=8)
        for method in ("percentile", "entropy", "minmax"):
            for symmetric in (True,):
                ranges = calibrate_ranges(fp32, batches, method, symmetric=symmetric, progress=False)
                for ops in (("Conv", "Gemm", "MatMul"), None):
                    out = Path(tmp) / "q.onnx"
                    quantize_qdq(fp32, out, ranges, "trt", ops)
                    rep = accuracy_report(
                        OnnxruntimeEmbedder(str(fp32), src.spec, providers=["CPUExecutionProvider"]),
                        OnnxruntimeEmbedder(str(out), src.spec, providers=["CPUExecutionProvider"]),
                        crops.holdout, crops.holdout_labels,
                    )
                    row = {"method": method, "ops": "Conv/Gemm/MatMul" if ops else "all",
                           "fp32_rank1": rep["fp32"]["rank1"], "int8_rank1": rep["int8"]["rank1"],
                           "fp32_mAP": rep["fp32"]["mAP"], "int8_mAP": rep["int8"]["mAP"],
                           "cos_mean": rep["cosine"]["mean"], "cos_min": rep["cosine"]["min"],
                           "queries": rep["fp32"]["queries"]}
                    rows.append(row)
                    print(row, flush=True)
    return rows


def latency(rounds: int, calib: int) -> list[dict]:
    import onnxruntime as ort

    from edgereid.calibration.crops import load_crop_dir
    from edgereid.calibration.qdq import quantize_qdq
    from edgereid.calibration.ranges import calibrate_ranges
    from edgereid.calibration.reader import CropBatches
    from edgereid.export import onnx_tools, source

    crops = load_crop_dir(PKU, calib, seed=0, holdout=0.0)
    sources = [("osnet_x0_25", source.from_onnx(OSNET))]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sources.append(("rga_sc folded (untrained)", source.from_arch("rga_sc")))
    except Exception as exc:  # the models may be missing in a partial checkout
        print("rga_sc unavailable:", exc)
    sessions = {}
    tmp = tempfile.mkdtemp()
    for name, src in sources:
        fp32 = Path(tmp) / f"{name[:5]}.onnx"
        source.write_model_onnx(src, fp32, 1, True, onnx_tools.DEFAULT_OPSET)
        batches = CropBatches(crops.calib, src.spec, src.input_name, batch=1)
        rs = calibrate_ranges(fp32, batches, "percentile", symmetric=True, progress=False)
        ra = calibrate_ranges(fp32, batches, "percentile", symmetric=False, progress=False)
        paths = {"fp32": fp32}
        paths["u8s8"] = quantize_qdq(fp32, Path(tmp) / f"{name[:5]}.u8s8.onnx", ra, "cpu")
        paths["s8s8"] = quantize_qdq(fp32, Path(tmp) / f"{name[:5]}.s8s8.onnx", rs, "trt")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        x = src.spec(crops.calib[:1])
        for flavour, p in paths.items():
            s = ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
            s.run(None, {src.input_name: x})
            sessions[(name, flavour)] = (s, {src.input_name: x})
    times = {k: [] for k in sessions}
    for _ in range(rounds):
        for k, (s, feed) in sessions.items():
            t = time.perf_counter()
            s.run(None, feed)
            times[k].append(1000 * (time.perf_counter() - t))
    rows = []
    for name, _ in sources:
        base = statistics.median(times[(name, "fp32")])
        for flavour in ("fp32", "u8s8", "s8s8"):
            med = statistics.median(times[(name, flavour)])
            rows.append({"model": name, "flavour": flavour, "median_ms": round(med, 2),
                         "speedup_vs_fp32": round(base / med, 2)})
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accuracy", action="store_true")
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--calib-size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.accuracy:
        accuracy_sweep(args.calib_size, args.seed)
    if args.latency:
        latency(args.rounds, 16)


if __name__ == "__main__":
    main()
