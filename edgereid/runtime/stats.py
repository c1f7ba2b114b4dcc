"""Bounded run statistics of the follow loop: per-stage latency, FPS, state and stop counts.

Memory stays flat over a run of any length: latencies live in fixed-size windows (the last
``window`` frames) next to running totals; stop reasons are counted by category (the text
before the first ':'), a small fixed set.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, Optional

import numpy as np

STAGES = ("capture", "detect", "track", "embed", "lock", "total")


class LatencyStats:
    """Per-stage milliseconds: running mean/max over the run, percentiles over the last ``window``."""

    def __init__(self, window: int = 1000) -> None:
        self.window: Dict[str, Deque[float]] = {s: collections.deque(maxlen=window) for s in STAGES}
        self.sums: Dict[str, float] = {s: 0.0 for s in STAGES}
        self.maxima: Dict[str, float] = {s: 0.0 for s in STAGES}
        self.counts: Dict[str, int] = {s: 0 for s in STAGES}

    def add(self, latency_ms: Dict[str, float]) -> None:
        for stage, ms in latency_ms.items():
            if stage not in self.window:
                continue
            self.window[stage].append(ms)
            self.sums[stage] += ms
            self.maxima[stage] = max(self.maxima[stage], ms)
            self.counts[stage] += 1

    def summary(self) -> Dict[str, Dict[str, float]]:
        """stage -> {mean, p50, p95, max} in ms (stages never measured are left out)."""
        out = {}
        for stage in STAGES:
            if not self.counts[stage]:
                continue
            values = np.asarray(self.window[stage], np.float64)
            out[stage] = {
                "mean": round(self.sums[stage] / self.counts[stage], 3),
                "p50": round(float(np.percentile(values, 50)), 3),
                "p95": round(float(np.percentile(values, 95)), 3),
                "max": round(self.maxima[stage], 3),
            }
        return out


@dataclass
class FollowSummary:
    """What a follow run did (returned by ``FollowLoop.run`` / ``run_follow``).

    Attributes:
        frames: frames processed (one message each).
        messages: messages sent, including STOP heartbeats while no frame arrived.
        seconds: wall time of the run.
        fps: end-to-end processed frames per second (frames / seconds).
        state_frames: state name -> frames that ended in that state.
        stop_reasons: reason category -> messages that carried a STOP with that reason.
        latency_ms: stage -> {mean, p50, p95, max} milliseconds.
        errors: stage failures caught during the run (each gave a STOP).
        first_locked_frame: source index of the first LOCKED frame, or None.
    """

    frames: int = 0
    messages: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    state_frames: Dict[str, int] = field(default_factory=dict)
    stop_reasons: Dict[str, int] = field(default_factory=dict)
    latency_ms: Dict[str, Dict[str, float]] = field(default_factory=dict)
    errors: int = 0
    first_locked_frame: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)

    def one_line(self) -> str:
        states = " ".join(f"{k}={v}" for k, v in sorted(self.state_frames.items()))
        total = self.latency_ms.get("total", {})
        return (f"reid-follow: {self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} FPS); {states}; "
                f"total latency mean {total.get('mean', 0):.0f} ms p95 {total.get('p95', 0):.0f} ms; "
                f"errors {self.errors}; stops {dict(sorted(self.stop_reasons.items()))}")


def reason_category(reason: str) -> str:
    """'embed failed: BackendError ...' -> 'embed failed' (bounded set of keys for counters)."""
    return reason.split(":", 1)[0].strip()[:40]
