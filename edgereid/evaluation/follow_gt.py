"""Score a follow run against MOT ground truth: is the commanded box the target, frame by frame?

The scenario metrics (``edgereid.scenario.metrics``) judge composited scenes with an oracle; this
module judges real footage with human labels (MOT ``gt.txt``: ``frame,id,left,top,width,height,...``,
frame 1-based). Inputs are the follow loop's own messages (``frame`` is 0-based), so what is
scored is exactly what the car received.

Per frame (``match_iou`` = 0.3 by default):
  * *on target*: state LOCKED and the commanded box has IoU > ``match_iou`` with the target's box;
  * *toward another*: the car is commanded (not STOP) toward a box with IoU > ``match_iou`` with
    someone else's box and <= ``match_iou`` with the target's (or the target is not there): the
    safety failure a follow-car must never show;
  * *toward nobody*: commanded toward a box that matches no labelled person (coasting on a guess);
  * *ambiguous*: on target but matching someone else better (two people overlapping).

The target is *visible* when at least ``visible_fraction`` of its box is not covered by the boxes
of people nearer the camera (larger bottom edge): MOT boxes continue through full occlusion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from edgereid.detections import box_iou_batch
from edgereid.errors import InputError

# 0-based frame -> {person id: xyxy box (4,) float32}
GroundTruth = Dict[int, Dict[int, np.ndarray]]


def read_mot_gt(path: Union[str, Path]) -> GroundTruth:
    """Read a MOT ``gt.txt`` (``frame,id,left,top,width,height[,...]``, frame 1-based) into 0-based frames.

    Rows whose 7th column (the MOT "consider" flag) is 0 are skipped, as the MOT devkit does.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--gt {str(path)!r} does not exist (expected a MOT gt.txt: frame,id,left,top,width,height).")
    gt: GroundTruth = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(",")
        try:
            frame, pid = int(float(parts[0])), int(float(parts[1]))
            left, top, width, height = (float(v) for v in parts[2:6])
            consider = float(parts[6]) if len(parts) > 6 else 1.0
        except (ValueError, IndexError):
            raise InputError(f"{path}:{number}: expected 'frame,id,left,top,width,height,...' numbers, "
                             f"received {line[:80]!r}.") from None
        if frame < 1 or width <= 0 or height <= 0:
            raise InputError(f"{path}:{number}: frame must be >= 1 and the box non-empty, received {line[:80]!r}.")
        if consider == 0:
            continue
        gt.setdefault(frame - 1, {})[pid] = np.array([left, top, left + width, top + height], np.float32)
    if not gt:
        raise InputError(f"--gt {str(path)!r} holds no boxes.")
    return gt


def write_mot_gt(path: Union[str, Path], gt: GroundTruth) -> None:
    """Write ``gt`` as a MOT ``gt.txt`` (frames back to 1-based), sorted by frame then id."""
    lines = []
    for frame in sorted(gt):
        for pid in sorted(gt[frame]):
            x1, y1, x2, y2 = (float(v) for v in gt[frame][pid])
            lines.append(f"{frame + 1},{pid},{x1:.1f},{y1:.1f},{x2 - x1:.1f},{y2 - y1:.1f},1,-1,-1,-1")
    Path(path).write_text("\n".join(lines) + "\n")


def visible_fraction(boxes: Dict[int, np.ndarray], pid: int, samples: Tuple[int, int] = (24, 12)) -> float:
    """Share of ``pid``'s box not covered by the boxes of people nearer the camera (larger bottom y).

    Sampled on a ``samples`` (rows, cols) grid of points inside the box: exact enough for a 0.5
    threshold and cheap (a few hundred comparisons per person).
    """
    if pid not in boxes:
        return 0.0
    x1, y1, x2, y2 = boxes[pid]
    nearer = [b for other, b in boxes.items() if other != pid and b[3] > y2]
    if not nearer:
        return 1.0
    ys = np.linspace(y1, y2, samples[0] + 2)[1:-1]
    xs = np.linspace(x1, x2, samples[1] + 2)[1:-1]
    px, py = np.meshgrid(xs, ys)
    covered = np.zeros(px.shape, bool)
    for b in nearer:
        covered |= (px >= b[0]) & (px <= b[2]) & (py >= b[1]) & (py <= b[3])
    return float(1.0 - covered.mean())


@dataclass
class FrameScore:
    """One frame's verdict (see the module docstring)."""

    frame: int
    state: str
    commanded: bool
    target_present: bool
    target_visible: float
    iou_target: float
    on_target: bool
    toward_other: Optional[int]
    toward_nobody: bool
    ambiguous: bool
    similarity: Optional[float]
    box: Optional[List[float]] = None


@dataclass
class FollowGtReport:
    """Ground-truth figures of one follow run.

    Attributes:
        target_id: the followed person's MOT id.
        frames: (first, last) 0-based frames scored.
        target_frames: frames in range where the target has a box.
        visible_frames: of those, frames where it is at least ``visible_fraction`` unoccluded.
        locked_on_target: target frames LOCKED on the target / target frames.
        locked_on_visible: visible frames LOCKED on the target / visible frames.
        toward_other_frames: frames commanding toward someone else (the safety figure; must be 0).
        toward_other_ids: those people's ids (sorted, unique).
        toward_nobody_frames: frames commanding toward a box that matches nobody.
        ambiguous_frames: on target but matching someone else better.
        commanded_frames: frames with a drive command (not STOP).
        relock_delays: per reappearance after >= ``min_hidden`` hidden frames, frames to the first
            LOCKED-on-target frame (None: never re-locked before the next hiding or the end).
        first_lock_frame: first frame LOCKED on the target, or None.
    """

    target_id: int
    frames: Tuple[int, int]
    target_frames: int = 0
    visible_frames: int = 0
    locked_on_target: float = 0.0
    locked_on_visible: float = 0.0
    toward_other_frames: int = 0
    toward_other_ids: List[int] = field(default_factory=list)
    toward_nobody_frames: int = 0
    ambiguous_frames: int = 0
    commanded_frames: int = 0
    relock_delays: List[Optional[int]] = field(default_factory=list)
    first_lock_frame: Optional[int] = None
    per_frame: List[FrameScore] = field(default_factory=list, repr=False)

    def to_dict(self, per_frame: bool = False) -> Dict[str, Any]:
        out = asdict(self)
        out["frames"] = list(self.frames)
        if not per_frame:
            out.pop("per_frame")
        return out


def score_follow(messages: Iterable[Dict[str, Any]], gt: GroundTruth, target_id: int,
                 frames: Optional[Tuple[int, int]] = None, match_iou: float = 0.3,
                 visible_fraction_min: float = 0.5, min_hidden: int = 3) -> FollowGtReport:
    """Score follow messages (``reid-follow``'s JSON lines) against ``gt`` for person ``target_id``.

    Args:
        messages: follow messages; those without a ``frame`` (heartbeats) are ignored.
        gt: from :func:`read_mot_gt` (0-based frames).
        target_id: the followed person's id in ``gt``.
        frames: (first, last) 0-based frames to score, inclusive; None = every frame with a message.
        match_iou: IoU above which a commanded box "is" a person.
        visible_fraction_min: the target counts as visible from this unoccluded share on.
        min_hidden: hidden runs shorter than this do not count as an occlusion for re-lock delays.
    """
    by_frame = {int(m["frame"]): m for m in messages if m.get("frame") is not None}
    if not by_frame:
        raise InputError("no follow messages with a frame index to score.")
    check_target_id(gt, target_id)
    first, last = frames if frames is not None else (min(by_frame), max(by_frame))
    report = FollowGtReport(target_id, (first, last))
    for index in range(first, last + 1):
        message = by_frame.get(index)
        if message is not None:
            report.per_frame.append(_score_frame(message, gt.get(index, {}), target_id, match_iou))
    _summarise(report, visible_fraction_min, min_hidden)
    return report


def check_target_id(gt: GroundTruth, target_id: int) -> None:
    """InputError naming the valid ids when ``target_id`` has no box in ``gt``."""
    if not any(target_id in people for people in gt.values()):
        ids = sorted({pid for people in gt.values() for pid in people})
        raise InputError(f"--target-id {target_id} is not in the ground truth; its ids are {ids}.")


def _score_frame(message: Dict[str, Any], people: Dict[int, np.ndarray], target_id: int,
                 match_iou: float) -> FrameScore:
    state = str(message.get("state"))
    target = message.get("target") or {}
    box = target.get("box")
    commanded = not message.get("command", {}).get("stop", True) and box is not None
    present = target_id in people
    visible = visible_fraction(people, target_id) if present else 0.0
    iou_target, best_other, best_other_iou = 0.0, None, 0.0
    if box is not None and people:
        ids = list(people)
        ious = box_iou_batch(np.asarray([box], np.float32), np.stack([people[i] for i in ids]))[0]
        for pid, iou in zip(ids, ious):
            if pid == target_id:
                iou_target = float(iou)
            elif iou > best_other_iou:
                best_other, best_other_iou = pid, float(iou)
    on_target = state == "LOCKED" and box is not None and iou_target > match_iou
    toward_other = best_other if commanded and best_other_iou > match_iou and iou_target <= match_iou else None
    toward_nobody = commanded and iou_target <= match_iou and best_other_iou <= match_iou
    ambiguous = on_target and best_other_iou > iou_target
    similarity = target.get("similarity")
    return FrameScore(int(message["frame"]), state, commanded, present, round(visible, 3), round(iou_target, 3),
                      on_target, toward_other, toward_nobody, ambiguous,
                      None if similarity is None else float(similarity),
                      None if box is None else [float(v) for v in box])


def _summarise(report: FollowGtReport, visible_min: float, min_hidden: int) -> None:
    rows = report.per_frame
    present = [r for r in rows if r.target_present]
    visible = [r for r in present if r.target_visible >= visible_min]
    report.target_frames, report.visible_frames = len(present), len(visible)
    report.locked_on_target = _share(sum(r.on_target for r in present), len(present))
    report.locked_on_visible = _share(sum(r.on_target for r in visible), len(visible))
    report.toward_other_frames = sum(r.toward_other is not None for r in rows)
    report.toward_other_ids = sorted({r.toward_other for r in rows if r.toward_other is not None})
    report.toward_nobody_frames = sum(r.toward_nobody for r in rows)
    report.ambiguous_frames = sum(r.ambiguous for r in rows)
    report.commanded_frames = sum(r.commanded for r in rows)
    report.first_lock_frame = next((r.frame for r in rows if r.on_target), None)
    report.relock_delays = relock_delays([r.target_present and r.target_visible >= visible_min for r in rows],
                                         [r.on_target for r in rows], min_hidden)


def relock_delays(visible: Sequence[bool], on_target: Sequence[bool], min_hidden: int = 3) -> List[Optional[int]]:
    """Frames from each reappearance (visible after >= ``min_hidden`` hidden frames, following a
    first visible stretch) to the first on-target frame; None when it never came before the next
    hiding or the end. The first appearance is the enrollment, not a re-lock, and is not counted."""
    delays: List[Optional[int]] = []
    hidden, seen = 0, False
    pending: Optional[int] = None  # frame index of the reappearance awaiting a lock
    for i, (vis, on) in enumerate(zip(visible, on_target)):
        if not vis:
            hidden += 1
            if pending is not None and hidden >= min_hidden:
                delays.append(None)  # hidden again before re-locking
                pending = None
            continue
        if seen and hidden >= min_hidden and pending is None:
            pending = i
        hidden, seen = 0, True
        if pending is not None and on:
            delays.append(i - pending)
            pending = None
    if pending is not None:
        delays.append(None)
    return delays


def _share(count: int, total: int) -> float:
    return round(count / total, 4) if total else 0.0


def follow_gt_markdown(report: Union[FollowGtReport, Dict[str, Any]]) -> str:
    """A short table for the terminal and BENCHMARKS.md (from the report or its ``to_dict()``)."""
    r = report.to_dict() if isinstance(report, FollowGtReport) else report
    relocks = [d for d in r["relock_delays"] if d is not None]
    never = sum(d is None for d in r["relock_delays"])
    lines = [
        f"Ground truth: target id {r['target_id']}, frames {r['frames'][0]}-{r['frames'][1]}",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| target frames (visible) | {r['target_frames']} ({r['visible_frames']}) |",
        f"| LOCKED on target, of target frames | {r['locked_on_target']:.1%} |",
        f"| LOCKED on target, of visible frames | {r['locked_on_visible']:.1%} |",
        f"| frames commanding toward someone else | {r['toward_other_frames']} "
        f"{r['toward_other_ids'] if r['toward_other_ids'] else ''} |",
        f"| frames commanding toward nobody | {r['toward_nobody_frames']} |",
        f"| on target but matching another better | {r['ambiguous_frames']} |",
        f"| re-locks after occlusion (max delay, never) | {len(relocks)} "
        f"({max(relocks) if relocks else '-'}, {never}) |",
        f"| first frame LOCKED on target | {r['first_lock_frame']} |",
    ]
    return "\n".join(lines) + "\n"


def plot_follow_gt(report: FollowGtReport, path: Union[str, Path]) -> bool:
    """Write a PNG over time: target visibility, state, IoU with the target, similarity, wrong frames.

    Returns False (and writes nothing) when matplotlib is not installed (the car image)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = report.per_frame
    x = np.array([r.frame for r in rows])
    colours = {"SEARCHING": "#bbbbbb", "ENROLLING": "#f0c040", "LOCKED": "#40a040", "LOST": "#e08030"}
    fig, (ax_state, ax_val) = plt.subplots(2, 1, figsize=(11, 4.2), sharex=True,
                                           gridspec_kw={"height_ratios": [1, 2.5]})
    for state, colour in colours.items():
        mask = np.array([r.state == state for r in rows])
        if mask.any():
            ax_state.bar(x[mask], 1, width=1.0, color=colour, label=state, linewidth=0)
    ax_state.set_yticks([])
    ax_state.legend(loc="upper left", ncol=4, fontsize=7, frameon=False)
    ax_state.set_title(f"target id {report.target_id}: LOCKED on target {report.locked_on_target:.1%} of its "
                       f"frames, {report.toward_other_frames} frames toward someone else", fontsize=9)
    ax_val.fill_between(x, 0, [r.target_visible if r.target_present else 0 for r in rows], step="mid",
                        color="#c0d8ff", label="target visible share")
    ax_val.plot(x, [r.iou_target for r in rows], lw=0.8, color="#206020", label="IoU command/target")
    ax_val.plot(x, [np.nan if r.similarity is None else r.similarity for r in rows], lw=0.8, color="#603090",
                label="similarity")
    wrong = [r.frame for r in rows if r.toward_other is not None]
    if wrong:
        ax_val.scatter(wrong, [0.02] * len(wrong), marker="|", color="red", s=60, label="toward someone else")
    ax_val.set_ylim(0, 1.05)
    ax_val.set_xlabel("frame")
    ax_val.legend(loc="lower left", ncol=4, fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(str(path), dpi=110)
    plt.close(fig)
    return True


def crops_from_gt(source: Union[str, Path], gt: GroundTruth, target_id: int, frames: Iterable[int]) -> List[np.ndarray]:
    """BGR crops of ``target_id`` cut from the video ``source`` at its ground-truth boxes in ``frames``
    (0-based): enrollment from labelled frames (``reid-bench follow --enroll-gt A-B:STEP``)."""
    from edgereid.lazy import require

    cv2 = require("cv2", "cutting enrollment crops from the video")
    wanted = sorted(f for f in set(frames) if target_id in gt.get(f, {}))
    if not wanted:
        raise InputError(f"person {target_id} has no ground-truth box in the enrollment frames.")
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise InputError(f"cannot open the video {str(source)!r} to cut enrollment crops.")
    crops: List[np.ndarray] = []
    try:
        index = 0
        while index <= wanted[-1]:
            ok, image = capture.read()
            if not ok:
                break
            if index in wanted:
                h, w = image.shape[:2]
                x1, y1, x2, y2 = gt[index][target_id]
                x1, y1 = max(int(round(float(x1))), 0), max(int(round(float(y1))), 0)
                x2, y2 = min(int(round(float(x2))), w), min(int(round(float(y2))), h)
                if x2 - x1 >= 2 and y2 - y1 >= 2:
                    crops.append(image[y1:y2, x1:x2].copy())
            index += 1
    finally:
        capture.release()
    if not crops:
        raise InputError(f"the video {str(source)!r} ended before the enrollment frames {wanted[0]}-{wanted[-1]}.")
    return crops


def parse_frame_range(text: str, what: str = "--frames") -> range:
    """``"A-B"`` or ``"A-B:STEP"`` (inclusive, 0-based) -> range."""
    try:
        span, _, step = text.partition(":")
        first, _, last = span.partition("-")
        out = range(int(first), int(last) + 1, int(step) if step else 1)
    except ValueError:
        raise InputError(f"{what} expects A-B or A-B:STEP (0-based frames), received {text!r}.") from None
    if len(out) == 0:
        raise InputError(f"{what} {text!r} selects no frame.")
    return out
