"""reid-export: parse the command line and call edgereid.export.export_bundle (nothing else)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from edgereid.calibration.mixed import DEFAULT_MIN_COSINE
from edgereid.cli.common import ArgumentParser, run_cli


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected 3 numbers like 0.485,0.456,0.406, got {text!r}") from exc


def _drop(text: str) -> float | None:
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected rank-1 points like 1.0, or 'off', got {text!r}") from exc


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="reid-export",
        description="Export a ReID model as a bundle for cpu, Jetson Xavier (TensorRT 8.5) or Horizon X3.",
    )
    src = p.add_argument_group("model source (one of)")
    src.add_argument("--arch", choices=["rga_sc", "rga_s", "rga_c", "rrid"], help="PyTorch architecture")
    src.add_argument("--checkpoint", help="official checkpoint (none = deterministic UNTRAINED weights)")
    src.add_argument("--onnx", help="any other ReID model as ONNX (e.g. an OSNet export)")
    src.add_argument("--input-name", help="--onnx: the image input, when the model has several")
    src.add_argument("--mean", type=_floats, help="--onnx: per-channel mean, 0..1 scale (default ImageNet)")
    src.add_argument("--std", type=_floats, help="--onnx: per-channel std (default ImageNet)")
    src.add_argument("--bgr", action="store_true", help="--onnx: the model takes BGR (default RGB)")
    src.add_argument("--flip-average", action="store_true", help="--onnx: average with the mirrored crop")

    tgt = p.add_argument_group("target")
    tgt.add_argument("--target", choices=["cpu", "xavier", "x3"], default="cpu")
    prec = tgt.add_mutually_exclusive_group()
    prec.add_argument("--fp16", dest="precision", action="store_const", const="fp16",
                      help="FP16 engine (default on xavier)")
    prec.add_argument("--int8", dest="precision", action="store_const", const="int8",
                      help="INT8 with calibration (needs --calib-data)")
    prec.add_argument("--fp32", dest="precision", action="store_const", const="fp32", help="cpu: FP32 (default)")
    batch = tgt.add_mutually_exclusive_group()
    batch.add_argument("--batch", type=int, help="static batch N")
    batch.add_argument("--dynamic-batch", metavar="MIN:OPT:MAX", help="dynamic batch profile (default 1:4:8)")
    tgt.add_argument("--dla", action="store_true", help="xavier: add DLA core 0/1 builds (needs a static batch)")
    tgt.add_argument("--trt-version", default="8.5.2",
                     help="TensorRT on the device, for the cache header (JetPack 5.1.x: 8.5.2; 5.0.2: 8.4.1)")
    tgt.add_argument("--opset", type=int, default=17, help="ONNX opset, 13..17 (default 17)")

    cal = p.add_argument_group("calibration")
    cal.add_argument("--calib-data", help="folder of person crops (recursive), a video, or a frame folder")
    cal.add_argument("--calib-frames", action="store_true", help="--calib-data is a folder of full frames")
    cal.add_argument("--detector", help="person detector for videos/frames (default: the runtime's)")
    cal.add_argument("--calib-size", type=int, default=512, help="calibration crops (default 512)")
    cal.add_argument("--calib-method", choices=["entropy", "minmax", "percentile"],
                     help="activation range method (default percentile, chosen by measurement)")
    cal.add_argument("--quantize-all-ops", action="store_true",
                     help="quantize every op, not only Conv/Gemm/MatMul (measured: less accurate)")
    cal.add_argument("--holdout", type=float, default=0.25,
                     help="share of identities (or crops) held out for the accuracy report")
    cal.add_argument("--holdout-max", type=int, default=256, help="at most this many hold-out crops")
    cal.add_argument("--seed", type=int, default=0)
    cal.add_argument("--max-drop", type=_drop, default=1.0, metavar="POINTS",
                     help="INT8 budget: keep the most sensitive layers in float until the labelled hold-out loses "
                          "at most POINTS rank-1 points (default 1.0; 'off' = full INT8)")
    cal.add_argument("--min-cosine", type=float, default=None,
                     help="INT8 budget: mean cosine to FP32 on the hold-out crops, labelled or not (default "
                          f"{DEFAULT_MIN_COSINE['trt']} for xavier, {DEFAULT_MIN_COSINE['cpu']} for cpu)")
    cal.add_argument("--no-bias-correction", action="store_true",
                     help="--int8 (xavier, cpu): keep the calibrated biases (default: move each layer's mean "
                          "INT8 error into its bias, measured on calibration crops)")
    cal.add_argument("--cpu-isa", choices=["auto", "avx512_vnni", "avx_vnni", "avx2", "asimddp", "neon"],
                     default="auto", help="--target cpu --int8: the CPU it will run on (default: this host); "
                                          "avx2 (no VNNI) gets 7-bit weights (reduce_range)")

    x3 = p.add_argument_group("x3")
    x3.add_argument("--x3-input", choices=["nv12", "rgb", "bgr"], default="nv12")
    x3.add_argument("--x3-calibration", choices=["default", "kl", "max"], default="default")
    x3.add_argument("--x3-cores", type=int, choices=[1, 2], default=1)
    x3.add_argument("--allow-unsupported", action="store_true", help="x3: keep ops the X3 cannot run")

    p.add_argument("--out", required=True, help="bundle directory to create")
    p.add_argument("--force", action="store_true", help="replace an existing non-empty --out")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _main(args: argparse.Namespace) -> int:
    from edgereid.calibration.qdq import DEFAULT_OP_TYPES
    from edgereid.export import export_bundle

    bundle = export_bundle(
        args.out,
        arch=args.arch, checkpoint=args.checkpoint, onnx=args.onnx,
        target=args.target, precision=args.precision, batch=args.batch, dynamic_batch=args.dynamic_batch,
        dla=args.dla, calib_data=args.calib_data, calib_size=args.calib_size, calib_frames=args.calib_frames,
        detector=args.detector, holdout=args.holdout, holdout_max=args.holdout_max, seed=args.seed,
        calib_method=args.calib_method, max_drop=args.max_drop, min_cosine=args.min_cosine, cpu_isa=args.cpu_isa,
        bias_correction=not args.no_bias_correction,
        op_types=None if args.quantize_all_ops else DEFAULT_OP_TYPES, trt_version=args.trt_version,
        opset=args.opset, input_name=args.input_name, mean=args.mean, std=args.std, bgr=args.bgr,
        flip_average=args.flip_average, x3_input=args.x3_input, x3_calibration=args.x3_calibration,
        x3_cores=args.x3_cores, allow_unsupported=args.allow_unsupported, force=args.force,
        progress=not args.no_progress,
    )
    m = bundle.manifest
    print(f"wrote {bundle.root} ({m.arch}, {m.target}, {m.precision}): {', '.join(sorted(m.files))}")
    acc = m.extra.get("accuracy") or {}
    if acc.get("fp32") and acc.get("int8"):
        ci = acc.get("delta_rank1_ci95_points")
        ci_text = f" (95 % interval of the change {ci[0]:+.1f} to {ci[1]:+.1f} points)" if ci else ""
        print(f"INT8 vs FP32 on {acc['crops']} held-out crops: rank-1 {100 * acc['fp32']['rank1']:.1f} -> "
              f"{100 * acc['int8']['rank1']:.1f}{ci_text}, cosine mean {acc['cosine']['mean']:.4f} (simulated)")
    elif acc.get("cosine"):
        print(f"INT8 vs FP32 cosine on {acc['crops']} held-out crops: mean {acc['cosine']['mean']:.4f}, "
              f"min {acc['cosine']['min']:.4f}")
    mp = (m.extra.get("int8") or {}).get("mixed_precision")
    if mp and "float_layers" in mp:
        print(f"INT8 share of MACs {100 * m.extra['int8']['int8_mac_share']:.1f} %, {len(mp['float_layers'])} layers "
              f"kept in float ({mp['budget']}{'' if mp['met'] else ': NOT met'})")
    if not m.source.get("trained", True):
        print("WARNING: exported UNTRAINED weights (no --checkpoint).", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
