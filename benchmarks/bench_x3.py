"""X3 export figures: BPU placement of the folded RGA-SC before/after the rewrites, and the
simulated X3 INT8 accuracy of the shared OSNet on PKU-Reid (and the cosine of RGA-SC INT8).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_x3.py [--methods default kl max]
      OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_x3.py --placement   (placement, cost model,
      host timing of the CPU subgraphs, cosine of the rewritten graph; no INT8 simulation)
Prints markdown rows for benchmarks/results/x3.md. Needs ../shared/assets.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ASSETS = ROOT.parent / "shared" / "assets"


def pku(eval_ids: int, calib_crops: int):
    """(holdout crops, (pid, cam) labels, calibration crops from the other identities)."""
    import cv2

    root = ASSETS / "reid_data" / "pku_reid"
    pids = sorted(p.name for p in root.iterdir() if p.is_dir())
    hold, labels, calib = [], [], []
    for k, pid in enumerate(pids):
        for f in sorted((root / pid).glob("*.png")):
            img = cv2.imread(str(f))
            if k < eval_ids:
                hold.append(img)
                labels.append((int(pid), int(f.name.split("_")[0])))
            else:
                calib.append(img)
    step = max(1, len(calib) // calib_crops)
    return hold, labels, calib[::step][:calib_crops]


def export_rga(path: Path):
    import torch

    from edgereid.models import load_model, preprocess_for

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model("rga_sc", folded=True)
        spec = preprocess_for("rga_sc")
        with torch.no_grad():
            torch.onnx.export(
                model, torch.zeros(1, 3, spec.height, spec.width), str(path), dynamo=False, opset_version=17,
                input_names=["images"], output_names=["feat"],
                dynamic_axes={"images": {0: "batch"}, "feat": {0: "batch"}},
            )
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--methods", nargs="+", default=["default", "kl", "max"])
    parser.add_argument("--eval-ids", type=int, default=31)
    parser.add_argument("--calib", type=int, default=100)
    parser.add_argument("--rga-crops", type=int, default=16)
    parser.add_argument("--placement", action="store_true", help="placement / cost tables only")
    args = parser.parse_args()
    if args.placement:
        from bench_x3_placement import placement_tables

        placement_tables(pku(args.eval_ids, 1)[0][::31][:16])  # 16 crops of 16 people
        return

    from edgereid.preprocess import PreprocessSpec
    from edgereid.x3.export import add_x3_files

    hold, labels, calib = pku(args.eval_ids, args.calib)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("| model | hb_mapper calibration (ours) | CPU subgraphs before -> after | CPU nodes after | "
              "BPU share of MACs before -> after | INT8-sim cosine min / mean | rank-1 FP32 -> INT8 | "
              "mAP FP32 -> INT8 | seconds |")
        print("|---|---|---|---|---|---|---|---|---|")
        osnet = ASSETS / "reid" / "osnet_x0_25_msmt17.onnx"
        for method in args.methods:
            out = tmp / f"osnet_{method}"
            out.mkdir()
            t0 = time.perf_counter()
            _, f = add_x3_files(out, osnet, PreprocessSpec(256, 128), calib, hold, labels, {"x3_calibration": method})
            _row(f"OSNet x0.25 (PKU {args.eval_ids} ids, {len(hold)} crops)", method, f, time.perf_counter() - t0)
        rga = tmp / "rga_sc.onnx"
        spec = export_rga(rga)
        crops = hold[:: max(1, len(hold) // args.rga_crops)][: args.rga_crops]
        out = tmp / "rga"
        out.mkdir()
        t0 = time.perf_counter()
        _, f = add_x3_files(out, rga, spec, calib[: args.rga_crops], crops, None, {"x3_calibration": "max"})
        _row(f"RGA-SC folded, untrained ({len(crops)} crops)", "max", f, time.perf_counter() - t0)
        print()
        print("RGA-SC rewrites:", f["rewrites"])


def _row(name: str, method: str, f: dict, seconds: float) -> None:
    from edgereid.x3.simulate import X3_TO_ORT_CALIBRATION

    rank = mAP = "-"
    if "fp32_rank1" in f:
        rank = f"{f['fp32_rank1']:.3f} -> {f['int8_sim_rank1']:.3f}"
        mAP = f"{f['fp32_mAP']:.3f} -> {f['int8_sim_mAP']:.3f}"
    print(
        f"| {name} | {method} ({X3_TO_ORT_CALIBRATION[method]}) | "
        f"{f['cpu_subgraphs_before']} -> {f['cpu_subgraphs']} | "
        f"{f['cpu_nodes']} | {100 * f['bpu_mac_share_before']:.2f}% -> {100 * f['bpu_mac_share']:.2f}% | "
        f"{f['int8_sim_cosine_min']:.4f} / {f['int8_sim_cosine_mean']:.4f} | {rank} | {mAP} | {seconds:.0f} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
