"""Follow-scenario metrics: is the car locked on the right person, and how fast does it come back?

Inputs are per-frame pairs of (ground truth, follow message). A LOCKED frame's box is *on the
target* when its IoU with the target's full ground-truth box is >= ``match_iou`` and larger than
its IoU with every distractor; *on a distractor* when it overlaps a distractor best (IoU >=
``match_iou``). The target is *visible* when at least ``visible_fraction`` of it is unoccluded.

Metrics:
  lock_precision      LOCKED frames on the target / LOCKED frames (1.0 when never LOCKED)
  locked_visible      target-visible frames LOCKED on the target / target-visible frames
  switches            times the lock moved onto a distractor (runs of LOCKED-on-distractor frames)
  distractor_frames   LOCKED frames on a distractor
  drive_distractor_frames  of those, frames with a drive command (not STOP) and IoU with the target
                      below ``match_iou``: the car driven toward someone else (the safety figure)
  relock_frames       per reappearance (target visible again after >= ``min_hidden`` hidden frames):
                      frames from reappearance to the first LOCKED-on-target frame (None: never)
  enrolled_frame      first LOCKED frame (None: never)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from edgereid.detections import box_iou_batch
from edgereid.scenario.scene import GroundTruth


@dataclass
class LockMetrics:
    frames: int = 0
    locked_frames: int = 0
    lock_precision: float = 1.0
    locked_visible: float = 0.0
    switches: int = 0
    distractor_frames: int = 0
    drive_distractor_frames: int = 0
    relock_frames: List[Optional[int]] = field(default_factory=list)
    enrolled_frame: Optional[int] = None

    @property
    def max_relock(self) -> Optional[float]:
        """Worst re-lock delay in frames; inf if a reappearance was never re-locked; None if none."""
        if not self.relock_frames:
            return None
        return float("inf") if any(r is None for r in self.relock_frames) else float(max(self.relock_frames))

    def to_dict(self) -> Dict[str, Any]:
        d = dict(self.__dict__)
        d["max_relock"] = self.max_relock
        return d


def classify_lock(message: Dict[str, Any], truth: GroundTruth, match_iou: float = 0.5) -> str:
    """'none' (not LOCKED), 'target', 'distractor' or 'nobody' for one frame."""
    target = message.get("target")
    if message.get("state") != "LOCKED" or not target:
        return "none"
    if not truth.names:
        return "nobody"
    iou = box_iou_batch(np.asarray(target["box"], np.float32)[None], truth.boxes)[0]
    best = int(np.argmax(iou))
    if iou[best] < match_iou:
        return "nobody"
    return "target" if truth.names[best] == "target" else "distractor"


def _target_iou(message: Dict[str, Any], truth: GroundTruth) -> float:
    box = truth.box_of("target")
    if box is None or not message.get("target"):
        return 0.0
    return float(box_iou_batch(np.asarray(message["target"]["box"], np.float32)[None], box[None])[0, 0])


def lock_metrics(truths: Sequence[GroundTruth], messages: Sequence[Dict[str, Any]], match_iou: float = 0.5,
                 visible_fraction: float = 0.5, min_hidden: int = 3) -> LockMetrics:
    """Score one scenario run (``truths[i]`` and ``messages[i]`` describe the same frame)."""
    if len(truths) != len(messages):
        raise ValueError(f"need one message per frame: {len(truths)} truths, {len(messages)} messages.")
    out = LockMetrics(frames=len(truths))
    on_target = visible = 0
    previous = "none"
    hidden_run = 0
    pending: Optional[int] = None  # frame of the reappearance not yet re-locked
    for i, (truth, message) in enumerate(zip(truths, messages)):
        kind = classify_lock(message, truth, match_iou)
        if kind != "none":
            out.locked_frames += 1
            if out.enrolled_frame is None:
                out.enrolled_frame = i
        on_target += kind == "target"
        if kind == "distractor":
            out.distractor_frames += 1
            if not message.get("command", {}).get("stop", True) and _target_iou(message, truth) < match_iou:
                out.drive_distractor_frames += 1  # driven toward someone else, not just an ambiguous overlap
            if previous != "distractor":
                out.switches += 1
        is_visible = truth.visibility_of("target") >= visible_fraction
        if is_visible:
            visible += 1
            if hidden_run >= min_hidden and out.enrolled_frame is not None and out.enrolled_frame < i - hidden_run:
                if pending is not None:
                    out.relock_frames.append(None)
                pending = i
            hidden_run = 0
        else:
            hidden_run += 1
        if pending is not None and kind == "target":
            out.relock_frames.append(i - pending)
            pending = None
        previous = kind
    if pending is not None:
        out.relock_frames.append(None)
    out.lock_precision = on_target / out.locked_frames if out.locked_frames else 1.0
    locked_and_visible = sum(
        1 for t, m in zip(truths, messages)
        if t.visibility_of("target") >= visible_fraction and classify_lock(m, t, match_iou) == "target"
    )
    out.locked_visible = locked_and_visible / visible if visible else 0.0
    return out
