"""reid-bench: latency, throughput and memory of a bundle's embedder, with the conditions measured under.

    reid-bench --bundle DIR [--backend ort|ort-int8|trt|bpu|torch] [--batch 1,4,8]
               [--warmup N] [--iters N] [--threads N] [--out report.json]
    reid-bench --compare A B [...]           A, B = BUNDLE_DIR or BUNDLE_DIR:BACKEND, timed A B A B ...
    reid-bench follow --source VIDEO --bundle DIR [--detector MODEL] [--frames N] [--out report.json]
                      [--gt gt.txt --target-id N [--gt-frames A-B] [--enroll-gt A-B:STEP]]
    reid-bench check --bundle DIR --backend trt|bpu|ort|ort-int8   self-check on the golden crops (exit 0/1)
    reid-bench layers --bundle DIR [--mode dla0]                   the built engine's layers vs the plan
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from edgereid.cli.common import ArgumentParser, run_cli


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="reid-bench", description=__doc__.split("\n")[0],
                       epilog="Subcommands: 'reid-bench follow --help' (the whole follow loop), 'reid-bench check "
                              "--help' (self-check after building on the device), 'reid-bench layers --help'.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--bundle", help="bundle directory made by reid-export")
    what.add_argument("--compare", nargs=2, metavar=("A", "B"),
                      help="two targets, BUNDLE_DIR or BUNDLE_DIR:BACKEND, measured interleaved")
    p.add_argument("--backend", default="ort",
                   help="ort | ort-int8 | trt | bpu | torch | auto (default ort; default for --compare targets "
                        "without ':backend')")
    p.add_argument("--batch", default="1", help="comma-separated batch sizes (default 1)")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls per batch size (default 10)")
    p.add_argument("--iters", type=int, default=100, help="timed calls per batch size (default 100)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: backend default)")
    p.add_argument("--data", default=None, help="folder of real crops to batch (default synthetic noise)")
    p.add_argument("--include-preprocess", action="store_true",
                   help="time embed(crops) incl. resize/normalise (always so for the X3 BPU)")
    p.add_argument("--out", help="JSON report; <stem>.md and <stem>.png are written beside it")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--no-peak-probe", action="store_true", help="skip the FP32 matmul probe (no x-limit column)")
    p.add_argument("--no-tegrastats", action="store_true", help="do not sample tegrastats on a Jetson")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def build_follow_parser() -> ArgumentParser:
    p = ArgumentParser(prog="reid-bench follow", description="per-stage latency and FPS of the follow loop")
    p.add_argument("--source", required=True, help="video file, image folder, camera (/dev/videoN, csi://0)")
    p.add_argument("--bundle", required=True, help="bundle directory")
    p.add_argument("--detector", default=None, help="person detector model (ONNX/engine/darknet cfg; default HOG)")
    p.add_argument("--backend", default="auto", help="embedder backend (default auto)")
    p.add_argument("--frames", type=int, default=300, help="frames to process (default 300)")
    p.add_argument("--warmup-frames", type=int, default=5, help="frames left out of the statistics (default 5)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--det-conf", type=float, default=0.4, help="detector score threshold (default 0.4)")
    p.add_argument("--det-size", type=int, default=None, help="detector input side for dynamic models")
    p.add_argument("--config", default=None, help="follow config INI (as reid-follow --config)")
    p.add_argument("--enroll", default=None, help="folder of crops of the person to follow (as reid-follow)")
    p.add_argument("--gt", default=None, help="MOT gt.txt of the source: score the commanded box per frame")
    p.add_argument("--target-id", type=int, default=None, help="the followed person's id in --gt")
    p.add_argument("--gt-frames", default=None, metavar="A-B", help="0-based frames to score (default all)")
    p.add_argument("--enroll-gt", default=None, metavar="A-B:STEP",
                   help="enroll the target from its --gt boxes in these 0-based frames (instead of --enroll)")
    p.add_argument("--out", help="JSON report; <stem>.md (and <stem>.png with --gt) beside it")
    p.add_argument("--no-tegrastats", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _main(args: argparse.Namespace) -> int:
    from edgereid.benchmarks.report import check_report_path, to_markdown, write_outputs
    from edgereid.benchmarks.run import benchmark

    out = check_report_path(args.out)
    specs = list(args.compare) if args.compare else [args.bundle]
    report = benchmark(specs, args.batch, warmup=args.warmup, iters=args.iters, threads=args.threads,
                       default_backend=args.backend, data=args.data, progress=not args.no_progress,
                       tegrastats=not args.no_tegrastats, peak_probe=not args.no_peak_probe,
                       include_preprocess=args.include_preprocess)
    print(to_markdown(report), end="")
    if out is not None:
        for path in write_outputs(report, out, plot=not args.no_plot):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _follow_main(args: argparse.Namespace) -> int:
    from edgereid.benchmarks.follow import bench_follow, follow_markdown
    from edgereid.benchmarks.report import check_report_path, write_json
    from edgereid.bundle import atomic_write_text

    out = check_report_path(args.out)
    report = bench_follow(args.source, args.bundle, args.detector, backend=args.backend, max_frames=args.frames,
                          warmup_frames=args.warmup_frames, threads=args.threads, det_conf=args.det_conf,
                          det_size=args.det_size, config=args.config, enroll=args.enroll,
                          tegrastats=not args.no_tegrastats, gt=args.gt, target_id=args.target_id,
                          gt_frames=args.gt_frames, enroll_gt=args.enroll_gt,
                          plot=str(out.with_suffix(".png")) if out is not None and args.gt else None)
    text = follow_markdown(report)
    print(text, end="")
    if out is not None:
        write_json(out, report)
        atomic_write_text(out.with_suffix(".md"), text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "follow":
        return run_cli(_follow_main, build_follow_parser(), argv[1:])
    if argv and argv[0] in ("check", "layers"):
        from edgereid.cli import bench_device as dev

        if argv[0] == "check":
            return run_cli(dev.check_main, dev.build_check_parser(), argv[1:])
        return run_cli(dev.layers_main, dev.build_layers_parser(), argv[1:])
    return run_cli(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
