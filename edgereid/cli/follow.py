"""``reid-follow``: run the follow loop on the car (a thin argparse layer over ``run_follow``).

Examples::

    reid-follow --camera /dev/video0 --bundle bundles/rga_sc-xavier-int8 --detector yolox_nano.onnx
    reid-follow --source walk.mp4 --bundle bundles/osnet --detector yolox_nano.onnx \\
        --output follow.jsonl --record follow.mp4 --max-frames 300
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from edgereid.cli.common import ArgumentParser, run_cli


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="reid-follow", description="Follow the person in front of the car: detect, embed, "
                       "track, lock on, and send set-points (JSON lines; STOP whenever unsure).")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--camera", help="camera: /dev/videoN, an index, csi://N or a GStreamer pipeline")
    where.add_argument("--source", help="video file, folder of frames, or rtsp:// URL")
    p.add_argument("--bundle", required=True, help="bundle directory written by reid-export")
    p.add_argument("--backend", default="auto", help="embedder backend: auto, ort, ort-int8, trt, bpu (default auto)")
    p.add_argument("--detector", help="person detector file (.onnx, .engine, .bin, .pt, .cfg); none = OpenCV HOG")
    p.add_argument("--det-conf", type=float, default=0.3, help="detector score threshold (default 0.3; the "
                   "tracker uses scores between it and [tracker] high_score to keep occluded people)")
    p.add_argument("--det-iou", type=float, default=0.5, help="detector NMS IoU (default 0.5)")
    p.add_argument("--det-size", type=int, help="detector input side for dynamic-size models")
    p.add_argument("--output", help="stdout (default), a file path, udp://host:port, or ros2[:/topic] "
                   "(geometry_msgs/Twist on /cmd_vel; needs a sourced ROS 2)")
    p.add_argument("--record", help="write an annotated video (.mp4, mp4v) here")
    p.add_argument("--show", action="store_true", help="show the annotated video in a window")
    p.add_argument("--realtime", action="store_true", help="pace a file source to its fps and enforce the latency "
                   "budget (cameras always do)")
    p.add_argument("--enroll", metavar="DIR", help="folder of crops of the person to follow (else: whoever stands "
                   "in front of the car is enrolled)")
    p.add_argument("--control-port", type=int, help="UDP port for operator commands ('enroll' = enroll anew)")
    p.add_argument("--config", help="INI file overriding follow_defaults.ini")
    p.add_argument("--max-frames", type=int, help="stop after N processed frames")
    p.add_argument("--width", type=int, help="camera width")
    p.add_argument("--height", type=int, help="camera height")
    p.add_argument("--fps", type=float, help="camera fps (and pacing of --realtime files)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    return p


def _main(args: argparse.Namespace) -> int:
    from edgereid.runtime.session import run_follow

    summary = run_follow(
        args.camera if args.camera is not None else args.source,
        args.bundle,
        detector=args.detector,
        output=args.output,
        config=args.config,
        backend=args.backend,
        det_conf=args.det_conf,
        det_iou=args.det_iou,
        det_size=args.det_size,
        width=args.width,
        height=args.height,
        fps=args.fps,
        realtime=args.realtime,
        record=args.record,
        show=args.show,
        enroll=args.enroll,
        control_port=args.control_port,
        max_frames=args.max_frames,
    )
    print(summary.one_line(), file=sys.stderr)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_cli(_main, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
