"""Drawing for ``--record`` and ``--show``: boxes, the target, state, similarity, set-points.

One verb per component (supervision's annotator habit): :func:`annotate` draws on a copy of the
frame; :class:`VideoRecorder` and :class:`Window` are frame sinks the follow loop calls after
each frame with ``(image, tracks, lock_result, command, message)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from edgereid.errors import InputError
from edgereid.lazy import require

STATE_COLOURS = {  # BGR
    "SEARCHING": (200, 200, 200),
    "ENROLLING": (0, 200, 255),
    "LOCKED": (0, 200, 0),
    "LOST": (0, 0, 255),
}


def annotate(image: np.ndarray, tracks: Any, result: Any, command: Any, message: Dict[str, Any]) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) BGR with every tracked box (grey, with id), the target box
    (state colour, thick; dashed look while coasting), and a status bar: state, similarity,
    set-points, stop reason, total latency."""
    cv2 = require("cv2", "drawing the annotated video")
    out = image.copy()
    state = message.get("state", "SEARCHING")
    colour = STATE_COLOURS.get(state, (255, 255, 255))
    if tracks is not None and len(tracks):
        ids = tracks.track_ids if tracks.track_ids is not None else [None] * len(tracks)
        for box, track_id in zip(tracks.xyxy, ids):
            x1, y1, x2, y2 = (int(v) for v in box)
            cv2.rectangle(out, (x1, y1), (x2, y2), (160, 160, 160), 1)
            if track_id is not None:
                cv2.putText(out, str(int(track_id)), (x1 + 2, y1 + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                            (160, 160, 160), 1, cv2.LINE_AA)
    target = message.get("target")
    if target:
        x1, y1, x2, y2 = (int(v) for v in target["box"])
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 1 if target.get("coasting") else 3)
        sim = target.get("similarity")
        label = f"{state} id {target.get('track_id')}" + ("" if sim is None else f" sim {sim:.2f}")
        cv2.putText(out, label, (x1, max(y1 - 5, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    cmd = message.get("command", {})
    bar = (f"frame {message.get('frame')} {state}  v {cmd.get('linear_x', 0):+.2f} m/s  "
           f"w {cmd.get('angular_z', 0):+.2f} rad/s  {message.get('latency_ms', {}).get('total', 0):.0f} ms")
    if message.get("reason"):
        bar += f"  STOP: {message['reason'][:40]}"
    cv2.rectangle(out, (0, 0), (out.shape[1], 20), (0, 0, 0), -1)
    cv2.putText(out, bar, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, 1, cv2.LINE_AA)
    return out


def check_record_path(path: str) -> None:
    """Refuse at start-up what VideoWriter would only refuse on the first frame (then the run goes on unrecorded)."""
    target = Path(path)
    if target.is_dir():
        raise InputError(f"--record {str(path)!r} is a directory; give a video file name such as follow.mp4.")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"--record {str(path)!r}: the folder {str(parent)!r} does not exist; create it first.")
    if target.suffix.lower() not in (".mp4", ".m4v", ".mov", ".avi", ".mkv"):
        raise InputError(f"--record {str(path)!r}: expected a .mp4 file (mp4v), received suffix "
                         f"{target.suffix or 'none'!r}.")


class VideoRecorder:
    """Writes annotated frames to an .mp4 (fourcc ``mp4v``: every OpenCV build has that encoder).

    The file is opened on the first frame (its size is the frame size), so nothing is written when
    a run fails at start-up.
    """

    def __init__(self, path: str, fps: float = 10.0) -> None:
        check_record_path(path)
        self.path = str(path)
        self.fps = float(fps) if fps and fps > 0 else 10.0
        self._writer: Optional[Any] = None
        self.frames = 0

    def __call__(self, image: np.ndarray, tracks: Any, result: Any, command: Any, message: Dict[str, Any]) -> None:
        self.write(annotate(image, tracks, result, command, message))

    def write(self, frame: np.ndarray) -> None:
        cv2 = require("cv2", "recording video")
        if self._writer is None:
            h, w = frame.shape[:2]
            self._writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                raise InputError(f"cannot open {self.path!r} for writing an mp4v video.")
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class Window:
    """``--show``: an OpenCV window; needs an OpenCV built with a GUI (not the -headless wheel)."""

    def __init__(self, name: str = "reid-follow") -> None:
        cv2 = require("cv2", "--show")
        self.name = name
        try:
            cv2.namedWindow(name, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise InputError(f"--show needs an OpenCV with GUI support (this one has none: {exc}). "
                             "Use --record out.mp4 instead, or install opencv-python.") from exc

    def __call__(self, image: np.ndarray, tracks: Any, result: Any, command: Any, message: Dict[str, Any]) -> None:
        cv2 = require("cv2", "--show")
        cv2.imshow(self.name, annotate(image, tracks, result, command, message))
        cv2.waitKey(1)

    def close(self) -> None:
        cv2 = require("cv2", "--show")
        cv2.destroyWindow(self.name)


class FanOut:
    """Calls several frame sinks in order (record and show at once)."""

    def __init__(self, *sinks: Any) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def __call__(self, *args: Any) -> None:
        for sink in self.sinks:
            sink(*args)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
