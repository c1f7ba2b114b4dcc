"""YOLOX-Nano person detector latency (ONNX Runtime CPU, 416x416) on the walking video.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_detector.py --frames 300

Every frame of the video (768x432, 10 fps) goes through the same detector twice, once with a
1-thread and once with a 2-thread ONNX Runtime session, alternating frame by frame so machine
load hits both alike. Per stage (letterbox+tensor, inference, decode+NMS) and end to end, p50/p90
in ms and the FPS the end-to-end p50 allows. Also the share of frames with at least one person
(conf 0.4 and 0.25), the number the shared assets' README quotes as "about 3 of 4 frames".
Prints a markdown section for benchmarks/results/detector.md.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets"


def _pct(samples: List[float], q: float) -> float:
    return 1000.0 * float(np.percentile(np.asarray(samples), q))


def _machine() -> str:
    import cv2
    import onnxruntime

    try:
        cpu = [line.split(":", 1)[1].strip() for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")][0]
    except (OSError, IndexError):
        cpu = platform.processor() or "unknown CPU"
    import os

    return (f"{cpu}, {os.cpu_count()} cores visible (shared with other work); Python "
            f"{platform.python_version()}, onnxruntime {onnxruntime.__version__}, OpenCV {cv2.__version__}, "
            f"numpy {np.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default=str(ASSETS / "detectors" / "yolox_nano.onnx"))
    parser.add_argument("--video", default=str(ASSETS / "video" / "one-by-one-person-detection.mp4"))
    parser.add_argument("--frames", type=int, default=0, help="0 = the whole video")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="ORT intra-op threads")
    parser.add_argument("--opencv", action="store_true",
                        help="also time the OpenCV 4.x detectors: Yolo-Fastest body (darknet) and HOG")
    args = parser.parse_args()

    from edgereid.runtime import yolo_decode
    from edgereid.runtime.detector import OrtDetectorRunner, YoloDetector, load_detector
    from edgereid.runtime.sources import open_source

    detectors = {n: YoloDetector(OrtDetectorRunner(args.detector, threads=n), 0.25, 0.5, None, f"t{n}")
                 for n in args.threads}
    stages = ("preprocess", "infer", "decode", "total")
    times: Dict[int, Dict[str, List[float]]] = {n: {s: [] for s in stages} for n in args.threads}
    persons: Dict[float, int] = {0.4: 0, 0.25: 0}
    others = {}
    if args.opencv:
        others["Yolo-Fastest body, darknet 320, OpenCV dnn"] = load_detector(
            str(ASSETS / "detectors" / "yolo-fastest-1.1_body.cfg"), conf=0.4)
        others["HOG people detector (fallback), 640 wide"] = load_detector(None, conf=0.4)
    other_times: Dict[str, List[float]] = {k: [] for k in others}
    other_hits: Dict[str, int] = {k: 0 for k in others}
    frames = 0
    with open_source(args.video) as src:
        while src.is_streaming and (args.frames <= 0 or frames < args.frames):
            frame = src.capture()
            if frame is None:
                continue
            frames += 1
            for n, det in detectors.items():
                t0 = time.perf_counter()
                tensor, box = det.preprocess(frame.image)
                t1 = time.perf_counter()
                out = det.runner.infer({det.runner.input_name: tensor})[det.output_name]
                t2 = time.perf_counter()
                xyxy, scores = yolo_decode.decode(det.decoder, out, det.size_hw, det.conf, det.iou)
                yolo_decode.boxes_to_frame(xyxy, box)
                t3 = time.perf_counter()
                for stage, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                    times[n][stage].append(dt)
            for conf in persons:
                persons[conf] += int((scores >= conf).any())
            for name, other in others.items():
                t0 = time.perf_counter()
                found = other.detect(frame.image)
                other_times[name].append(time.perf_counter() - t0)
                other_hits[name] += int(len(found) > 0)

    print(f"## YOLOX-Nano ONNX, ORT CPU, {det.size_hw[0]}x{det.size_hw[1]} input\n")
    print(f"Machine: {_machine()}.\n")
    shape = "x".join(str(v) for v in frame.image.shape[1::-1]) if frames else "?"
    runs = " / ".join(f"{n}-thread" for n in args.threads) + (" / OpenCV detectors" if others else "")
    print(f"Video: {Path(args.video).name}, {frames} frames of {shape}; {runs} interleaved frame by frame.\n")
    print("| ORT threads | stage | p50 ms | p90 ms |\n|---|---|---|---|")
    for n in args.threads:
        for stage in stages:
            print(f"| {n} | {stage} | {_pct(times[n][stage], 50):.1f} | {_pct(times[n][stage], 90):.1f} |")
    print("\n| ORT threads | end-to-end FPS at p50 | at p90 |\n|---|---|---|")
    for n in args.threads:
        print(f"| {n} | {1000 / _pct(times[n]['total'], 50):.1f} | {1000 / _pct(times[n]['total'], 90):.1f} |")
    print("\n| detector | conf | p50 ms | p90 ms | frames with >= 1 person | share |\n|---|---|---|---|---|---|")
    first = args.threads[0]
    for conf, hits in persons.items():
        print(f"| YOLOX-Nano ONNX 416 ({first} thread) | {conf} | {_pct(times[first]['total'], 50):.1f} | "
              f"{_pct(times[first]['total'], 90):.1f} | {hits} / {frames} | {hits / max(frames, 1):.2f} |")
    for name in others:
        print(f"| {name} | 0.4 | {_pct(other_times[name], 50):.1f} | {_pct(other_times[name], 90):.1f} | "
              f"{other_hits[name]} / {frames} | {other_hits[name] / max(frames, 1):.2f} |")


if __name__ == "__main__":
    main()
