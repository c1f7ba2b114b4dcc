"""Peak memory of calibrating the folded RGA-SC on many crops (chunked ORT calibration).

ONNX Runtime's calibrators hold every intermediate output of every sample in one pass; ours feed
chunks sized from an activation budget, so the peak does not grow with the number of crops.

    OMP_NUM_THREADS=1 /usr/bin/time -v .venv/bin/python benchmarks/bench_calib_memory.py --crops 512
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import warnings
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1].parent / "shared" / "assets"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crops", type=int, default=512)
    ap.add_argument("--method", default="minmax")
    args = ap.parse_args()
    from edgereid.calibration.crops import load_crop_dir
    from edgereid.calibration.ranges import activation_bytes_per_feed, calibrate_ranges, feeds_per_chunk
    from edgereid.calibration.reader import CropBatches
    from edgereid.export import onnx_tools, source

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = source.from_arch("rga_sc")
    crops = load_crop_dir(ASSETS / "reid_data" / "pku_reid", args.crops, holdout=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        source.write_model_onnx(src, path, 1, True, onnx_tools.DEFAULT_OPSET)
        batches = CropBatches(crops.calib, src.spec, src.input_name, batch=4)
        per_feed = activation_bytes_per_feed(path, 4)
        print(f"activations per feed of 4 crops: {per_feed / 2**20:.0f} MiB; "
              f"feeds per chunk: {feeds_per_chunk(per_feed)}")
        start = time.perf_counter()
        ranges = calibrate_ranges(path, batches, args.method, progress=False)
        took = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{len(crops.calib)} crops, {args.method}: {len(ranges.ranges)} tensors in {took:.0f} s, "
          f"peak RSS {peak:.2f} GiB")


if __name__ == "__main__":
    main()
