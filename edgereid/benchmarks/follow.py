"""``reid-bench follow``: per-stage latency (capture, detect, track, embed, lock, total) and FPS of the
whole follow loop on a video, through the runtime's own ``run_follow`` (the code reid-follow runs).

Every message the loop sends carries ``latency_ms`` per stage; we keep them all (a bounded run)
and summarise each stage with the same percentile arithmetic as reid-bench, after dropping the
first ``warmup_frames`` (model load, first-call allocations).
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Dict, List

from edgereid.benchmarks.conditions import collect_conditions
from edgereid.benchmarks.resources import peak_rss_mb
from edgereid.benchmarks.stats import latency_summary
from edgereid.benchmarks.tegrastats import TegrastatsSampler
from edgereid.errors import InputError

STAGES = ("capture", "detect", "track", "embed", "lock", "total")


class _Collector:
    """A follow-loop output that keeps the messages for the report."""

    def __init__(self) -> None:
        self.messages: List[Dict[str, Any]] = []

    def send(self, message: Dict[str, Any]) -> None:
        self.messages.append(message)


def stage_summary(messages: List[Dict[str, Any]], warmup_frames: int = 5) -> Dict[str, Dict[str, float]]:
    """stage -> latency_summary of its per-frame ms, over frame messages after the warm-up."""
    frames = [m for m in messages if m.get("frame") is not None][warmup_frames:]
    out = {}
    for stage in STAGES:
        values = [m["latency_ms"][stage] / 1000.0 for m in frames if stage in m.get("latency_ms", {})]
        if values:
            out[stage] = latency_summary(values)
    return out


def bench_follow(source: str, bundle: str, detector: str | None, backend: str = "auto", max_frames: int | None = 300,
                 warmup_frames: int = 5, threads: int | None = None, det_conf: float = 0.4,
                 det_size: int | None = None, config: str | None = None, enroll: str | None = None,
                 tegrastats: bool = True, gt: str | None = None, target_id: int | None = None,
                 gt_frames: str | None = None, enroll_gt: str | None = None,
                 plot: str | None = None) -> Dict[str, Any]:
    """Run the follow loop (``edgereid.runtime.session.run_follow``) over ``source`` as fast as it goes.

    Args:
        source: video file, image folder or camera URI (as ``reid-follow --source``).
        bundle: bundle directory.
        detector: person detector model (None = OpenCV HOG).
        backend: embedder backend.
        max_frames: frames to process; warmup_frames of them are left out of the statistics.
        threads: onnxruntime intra-op threads of the embedder and of an .onnx detector.
        det_conf, det_size, config, enroll: as ``reid-follow``.
        tegrastats: sample tegrastats during the run (Jetson).
        gt, target_id: a MOT ``gt.txt`` for ``source`` and the followed person's id in it: the report
            gains the ground-truth figures (``edgereid.evaluation.follow_gt``).
        gt_frames: ``A-B`` 0-based frames to score (default: every processed frame).
        enroll_gt: ``A-B:STEP`` frames whose ground-truth boxes of ``target_id`` are cut out and
            enrolled (instead of ``enroll``).
        plot: PNG path for the ground-truth plot over time.
    """
    from edgereid.runtime.backends import backend_options
    from edgereid.runtime.embedder import load_embedder
    from edgereid.runtime.session import run_follow

    if max_frames is not None and max_frames <= warmup_frames:
        raise InputError(f"--frames ({max_frames}) must exceed --warmup-frames ({warmup_frames}).")
    truth, span = None, None
    if gt is not None or enroll_gt is not None or gt_frames is not None:
        from edgereid.evaluation.follow_gt import check_target_id, crops_from_gt, parse_frame_range, read_mot_gt

        if gt is None or target_id is None:
            raise InputError("--gt and --target-id go together (and --gt-frames / --enroll-gt need both).")
        truth = read_mot_gt(gt)  # every ground-truth input is checked before the run, not after it
        check_target_id(truth, target_id)
        span = parse_frame_range(gt_frames, "--gt-frames") if gt_frames else None
        if enroll_gt is not None:
            enroll = crops_from_gt(source, truth, target_id, parse_frame_range(enroll_gt, "--enroll-gt"))
    embedder = load_embedder(bundle, backend, **backend_options(backend, threads))
    det: Any = detector
    if isinstance(detector, (str, os.PathLike)) and threads:
        from edgereid.runtime.detector import load_detector

        # --threads pins the detector too: left at one thread per core it slows whenever the
        # embedder holds the other core, which made the loop's FPS swing between runs.
        det = load_detector(str(detector), conf=det_conf, size=det_size, threads=threads)
    collector = _Collector()
    sampler = TegrastatsSampler() if tegrastats else None
    try:
        if sampler is not None:
            sampler.start()
        summary = run_follow(source, embedder, det, output=collector, config=config, det_conf=det_conf,
                             det_size=det_size, enroll=enroll, max_frames=max_frames, realtime=False)
    finally:
        if sampler is not None:
            sampler.stop()
    ground_truth = None
    if truth is not None:
        from edgereid.evaluation.follow_gt import plot_follow_gt, score_follow

        scored = score_follow(collector.messages, truth, int(target_id),
                              frames=None if span is None else (span[0], span[-1]))
        ground_truth = scored.to_dict(per_frame=True)
        if plot is not None:
            ground_truth["plot"] = str(plot) if plot_follow_gt(scored, plot) else None
    stages = stage_summary(collector.messages, warmup_frames)
    if not stages:
        raise InputError(f"the source {source!r} gave no frames after the {warmup_frames}-frame warm-up.")
    total = stages.get("total")
    return {
        "schema": "edgereid.reid_bench/1",
        "mode": "follow",
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": {"source": source, "bundle": bundle, "backend": backend, "detector": detector,
                     "max_frames": max_frames, "warmup_frames": warmup_frames, "threads": threads,
                     "det_conf": det_conf, "det_size": det_size, "config": config,
                     "enroll": enroll if not isinstance(enroll, list) else f"{len(enroll)} crops from --enroll-gt",
                     "gt": gt, "target_id": target_id, "gt_frames": gt_frames, "enroll_gt": enroll_gt},
        "ground_truth": ground_truth,
        "stages_ms": stages,
        "fps_end_to_end": summary.fps,
        "fps_from_total_mean": 1000.0 / total["mean_ms"] if total and total["mean_ms"] > 0 else None,
        "frames": summary.frames,
        "states": summary.state_frames,
        "errors": summary.errors,
        "memory": {"peak_rss_mb": peak_rss_mb()},
        "tegrastats": sampler.report() if sampler is not None else None,
        "conditions": collect_conditions(),
    }


def follow_markdown(report: Dict[str, Any]) -> str:
    lines = ["| stage | p50 ms | p90 ms | p99 ms | mean ms | max ms | frames |", "|---|---:|---:|---:|---:|---:|---:|"]
    for stage, s in report["stages_ms"].items():
        lines.append(f"| {stage} | {s['p50_ms']:.2f} | {s['p90_ms']:.2f} | {s['p99_ms']:.2f} | {s['mean_ms']:.2f} | "
                     f"{s['max_ms']:.2f} | {s['n']} |")
    lines.append("")
    lines.append(f"End-to-end {report['fps_end_to_end']:.2f} FPS over {report['frames']} frames; states "
                 f"{report['states']}.")
    if report.get("ground_truth"):
        from edgereid.evaluation.follow_gt import follow_gt_markdown

        lines += ["", follow_gt_markdown(report["ground_truth"]).rstrip()]
    return "\n".join(lines) + "\n"
