"""reid-bench / reid-eval rows of benchmarks/results/bench_eval.md for the OSNet x0.25 ONNX on this machine.

    .venv/bin/python benchmarks/bench_eval.py bundles           # split PKU-Reid, export the OSNet bundles
    .venv/bin/python benchmarks/bench_eval.py peak --threads 1  # FP32 matmul peak probe
    benchmarks/bench_eval.sh                                   # every row, one command each (see that file)

Everything goes to $EDGEREID_BENCH_DIR (default /tmp/edgereid-bench), never into the project.

Why the split: INT8 calibrated on crops that are also scored flatters INT8. The 62 PKU-Reid
identities are split in half by identity (``split_by_identity``, holdout 0.5, seed 0: the split of
benchmarks/bench_ort_int8.py) into two folders of per-file symlinks:

    $W/pku_calib/<pid>/*.png   31 ids, both cameras: the only crops the exporter calibrates on
    $W/pku_eval/<pid>/*.png    the other 31 ids: what reid-eval scores (camera 1 query, camera 2 gallery)

The bundles come from our exporter (``edgereid.export.export_bundle``, the same call as
``reid-export``), with its defaults (percentile 99.999 %, Conv/Gemm/MatMul, per-channel weights):

    $W/osnet-u8s8   target="cpu",    precision="int8": onnx + onnx_int8_cpu (u8s8 QDQ for ONNX Runtime)
    $W/osnet-s8s8   target="xavier", precision="int8": onnx + onnx_int8_qdq (s8s8 TensorRT-form QDQ),
                                                       calib.cache, build_engine.sh, DLA report

The exporter holds out a quarter of the calibration identities for its own manifest accuracy
report; every remaining crop of pku_calib is calibrated on (calib_size = all of them).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets"
OSNET = ASSETS / "reid" / "osnet_x0_25_msmt17.onnx"
PKU = ASSETS / "reid_data" / "pku_reid"
SPLIT_SEED = 0
EVAL_SHARE = 0.5  # share of PKU identities scored by reid-eval; the rest is calibration data
EXPORT_HOLDOUT = 0.25  # the exporter's default share of calibration ids kept for its own report
FLAVOURS = {"u8s8": "cpu", "s8s8": "xavier"}  # bundle name suffix -> export target


def work_dir() -> Path:
    return Path(os.environ.get("EDGEREID_BENCH_DIR", "/tmp/edgereid-bench"))


def split_pku(root: Path) -> tuple[Path, Path]:
    """(calibration folder, evaluation folder) of symlinks under ``root``; identities disjoint."""
    from edgereid.calibration.crops import split_by_identity
    from edgereid.evaluation.naming import identity_of, list_images

    paths = list_images(PKU)
    calib_idx, eval_idx = split_by_identity([identity_of(p) for p in paths], EVAL_SHARE, SPLIT_SEED)
    folders = (root / "pku_calib", root / "pku_eval")
    for folder, picked in zip(folders, (calib_idx, eval_idx)):
        _link_tree(folder, [paths[i] for i in picked])
    return folders


def _link_tree(folder: Path, files: list[Path]) -> None:
    """``folder/<pid>/<name>`` -> the asset file, for each file; stale links removed first."""
    if folder.exists():
        for link in sorted(folder.glob("*/*"), reverse=True):
            link.unlink()
        for sub in folder.iterdir():
            sub.rmdir()
    for src in files:
        dst = folder / src.parent.name / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(src, dst)


def _calibration_crop_count(calib_dir: Path) -> int:
    """Crops of ``calib_dir`` left for calibration after the exporter's own identity hold-out."""
    from edgereid.calibration.crops import split_by_identity
    from edgereid.evaluation.naming import identity_of, list_images

    labels = [identity_of(p) for p in list_images(calib_dir)]
    return len(split_by_identity(labels, EXPORT_HOLDOUT, SPLIT_SEED)[0])


def make_bundles() -> list[Path]:
    """osnet-u8s8/ (cpu int8) and osnet-s8s8/ (xavier int8), calibrated on pku_calib only."""
    from edgereid.export import export_bundle

    root = work_dir()
    root.mkdir(parents=True, exist_ok=True)
    calib_dir, eval_dir = split_pku(root)
    calib_size = _calibration_crop_count(calib_dir)
    made = []
    for flavour, target in FLAVOURS.items():
        out = root / f"osnet-{flavour}"
        bundle = export_bundle(
            out, onnx=str(OSNET), target=target, precision="int8", calib_data=str(calib_dir),
            calib_size=calib_size, holdout=EXPORT_HOLDOUT, seed=SPLIT_SEED, force=True, progress=False,
        )
        extra = bundle.manifest.extra
        print(json.dumps({"bundle": str(out), "files": bundle.manifest.files,
                          "calibration": extra["int8"]["calibration"], "calib_method": extra["int8"]["calib_method"],
                          "accuracy_on_calib_holdout": extra.get("accuracy")}, indent=2))
        made.append(out)
    print(json.dumps({"evaluation_data": str(eval_dir), "calibration_data": str(calib_dir),
                      "eval_ids": len(list(eval_dir.iterdir())), "calib_ids": len(list(calib_dir.iterdir()))}))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("bundles", help="split PKU-Reid and export the OSNet bundles into $EDGEREID_BENCH_DIR")
    peak = sub.add_parser("peak", help="FP32 matmul probe and OSNet's compute floor")
    peak.add_argument("--threads", type=int, default=1)
    peak.add_argument("--n", type=int, default=1024)
    args = parser.parse_args()
    if args.cmd == "bundles":
        make_bundles()
    else:
        from edgereid.benchmarks.limits import count_onnx_macs, measure_peak_flops

        probe = measure_peak_flops(n=args.n, repeats=20, threads=args.threads)
        macs = count_onnx_macs(OSNET)
        probe["osnet_macs_per_crop"] = macs
        probe["osnet_floor_ms_batch1"] = 2.0 * macs / (probe["peak_gflops"] * 1e9) * 1000.0
        print(json.dumps(probe, indent=2))


if __name__ == "__main__":
    main()
