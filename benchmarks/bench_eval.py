"""reid-bench / reid-eval rows of BENCHMARKS.md for the OSNet x0.25 ONNX on this machine.

    .venv/bin/python benchmarks/bench_eval.py bundles           # build the OSNet bundles (FP32 + INT8 u8s8 / s8s8)
    .venv/bin/python benchmarks/bench_eval.py peak --threads 1  # FP32 matmul peak probe
    benchmarks/bench_eval.sh                                   # every row, one command each (see that file)

The bundles go to $EDGEREID_BENCH_DIR (default /tmp/edgereid-bench), never into the project.
INT8 models are made with onnxruntime.quantization.quantize_static (QDQ, per-tensor, MinMax) on
64 PKU-Reid crops (every 15th image; these crops are also in the evaluation set, so the INT8
accuracy is, if anything, flattered). u8s8 = uint8 activations / int8 weights (ONNX Runtime's
fast CPU flavour); s8s8 = int8 both (the TensorRT flavour, symmetric).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets"
OSNET = ASSETS / "reid" / "osnet_x0_25_msmt17.onnx"
PKU = ASSETS / "reid_data" / "pku_reid"


def work_dir() -> Path:
    return Path(os.environ.get("EDGEREID_BENCH_DIR", "/tmp/edgereid-bench"))


def _calibration_batch(count: int = 64):
    import cv2

    from edgereid.preprocess import PreprocessSpec

    paths = sorted(PKU.glob("*/*.png"))[::15][:count]
    return PreprocessSpec(256, 128)([cv2.imread(str(p)) for p in paths])


def _quantize(src: Path, dst: Path, flavour: str) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    batch = _calibration_batch()

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"images": batch[i : i + 16]} for i in range(0, len(batch), 16)])

        def get_next(self):
            return next(self.items, None)

    activation = QuantType.QUInt8 if flavour == "u8s8" else QuantType.QInt8
    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, activation_type=activation,
                    weight_type=QuantType.QInt8, per_channel=False,
                    extra_options={"ActivationSymmetric": flavour == "s8s8"})


def make_bundles() -> list[Path]:
    """osnet-u8s8/ and osnet-s8s8/: model.onnx (symlink to the asset) + model.int8.onnx + manifest."""
    from edgereid.bundle import Manifest, write_manifest
    from edgereid.preprocess import PreprocessSpec

    made = []
    for flavour in ("u8s8", "s8s8"):
        root = work_dir() / f"osnet-{flavour}"
        root.mkdir(parents=True, exist_ok=True)
        link = root / "model.onnx"
        if not link.exists():
            os.symlink(OSNET, link)
        _quantize(OSNET, root / "model.int8.onnx", flavour)
        write_manifest(root, Manifest(
            arch="onnx", target="cpu", precision="int8", preprocess=PreprocessSpec(256, 128),
            inputs=[{"name": "images", "shape": ["batch", 3, 256, 128], "dtype": "float32"}],
            outputs=[{"name": "output", "shape": ["batch", 512], "dtype": "float32"}],
            files={"onnx": "model.onnx", "onnx_int8_qdq": "model.int8.onnx"}, embedding_dim=512,
            source={"path": str(OSNET), "sha256": None, "trained": True},
            extra={"int8_flavour": flavour, "calibration": "64 PKU-Reid crops, MinMax, per-tensor"}))
        made.append(root)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("bundles", help="build the OSNet bundles in $EDGEREID_BENCH_DIR")
    peak = sub.add_parser("peak", help="FP32 matmul probe and OSNet's compute floor")
    peak.add_argument("--threads", type=int, default=1)
    peak.add_argument("--n", type=int, default=1024)
    args = parser.parse_args()
    if args.cmd == "bundles":
        for root in make_bundles():
            print(root)
    else:
        from edgereid.benchmarks.limits import count_onnx_macs, measure_peak_flops

        probe = measure_peak_flops(n=args.n, repeats=20, threads=args.threads)
        macs = count_onnx_macs(OSNET)
        probe["osnet_macs_per_crop"] = macs
        probe["osnet_floor_ms_batch1"] = 2.0 * macs / (probe["peak_gflops"] * 1e9) * 1000.0
        print(json.dumps(probe, indent=2))


if __name__ == "__main__":
    main()
