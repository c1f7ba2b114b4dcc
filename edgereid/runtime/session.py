"""``run_follow``: open everything the follow loop needs, check it at start-up, run, clean up.

Everything a user can get wrong (no such camera or file, a bundle with a missing file or an
unknown schema, an unknown detector kind, an unresolvable UDP target, an empty ``--enroll``
folder, a bad config) raises an :class:`~edgereid.errors.EdgeReidError` *before* the first
frame, so ``reid-follow`` prints one message and exits 2 with nothing half-written (the
``--record`` file is created on the first processed frame). Once running, the loop never
raises for a frame; it commands STOP.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, List, Optional, Union

import numpy as np

from edgereid.errors import InputError
from edgereid.runtime.config import FollowConfig, load_config
from edgereid.runtime.loop import FollowLoop
from edgereid.runtime.stats import FollowSummary

log = logging.getLogger("edgereid.follow")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def read_enroll_crops(folder: Union[str, Path]) -> List[np.ndarray]:
    """BGR crops of the person to follow from ``--enroll DIR`` (jpg/png/bmp, sorted by name)."""
    from edgereid.evaluation.naming import read_image  # a corrupt crop is refused, as export and eval do

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--enroll {str(folder)!r} is not a folder (expected crops of the person to follow).")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    crops = [read_image(p, "--enroll crop") for p in paths]
    if not crops:
        raise InputError(f"--enroll {str(folder)!r} holds no readable {'/'.join(IMAGE_SUFFIXES)} image.")
    return crops


def run_follow(
    source: Any,
    bundle: Any,
    detector: Any = None,
    output: Any = None,
    config: Union[FollowConfig, str, Path, None] = None,
    *,
    backend: str = "auto",
    det_conf: float = 0.3,
    det_iou: float = 0.5,
    det_size: Optional[int] = None,
    width: Optional[int] = None,
    height: Optional[int] = None,
    fps: Optional[float] = None,
    realtime: bool = False,
    record: Optional[str] = None,
    show: bool = False,
    enroll: Union[str, Path, List[np.ndarray], None] = None,
    control_port: Optional[int] = None,
    max_frames: Optional[int] = None,
) -> FollowSummary:
    """Run the follow loop to the end of the source (or ``max_frames``) and return its summary.

    Args:
        source: a URI for ``open_source`` (camera, file, folder, stream, pipeline) or a FrameSource.
        bundle: bundle directory, ``Bundle``, or an ``EmbedderRunner``.
        detector: detector file, a ``Detector`` (anything with ``detect(image)``), or None (HOG).
        output: ``open_output`` spec (None = stdout JSON lines, a file, ``udp://host:port``), ``ros2`` or
            ``ros2:/topic`` (a geometry_msgs/Twist publisher; needs a sourced ROS 2), or an Output.
        config: a FollowConfig, an INI file path, or None (defaults).
        backend: embedder backend (``auto``, ``ort``, ``trt``, ``bpu``, ...).
        det_conf, det_iou, det_size: detector options.
        width, height, fps: camera mode requested.
        realtime: pace a file source to its fps and enforce the latency budget.
        record: path of an annotated .mp4 to write.
        show: open a window (needs an OpenCV with GUI).
        enroll: folder of crops of the person to follow, or a list of BGR crops (skips automatic
            enrollment).
        control_port: UDP port for operator commands (``enroll``), None = none.
        max_frames: stop after this many processed frames.
    """
    from edgereid.runtime.annotate import FanOut, VideoRecorder, Window
    from edgereid.runtime.control import UdpControl
    from edgereid.runtime.detector import load_detector
    from edgereid.runtime.embedder import EmbedderRunner, load_embedder
    from edgereid.runtime.sources import open_source

    if not isinstance(config, FollowConfig):
        config = load_config(config)
    if max_frames is not None and max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, received {max_frames}.")
    if record:
        from edgereid.runtime.annotate import check_record_path

        check_record_path(record)  # before anything opens: VideoWriter itself fails only on frame 1
    opened: List[Any] = []
    try:
        embedder = bundle if isinstance(bundle, EmbedderRunner) else load_embedder(bundle, backend=backend)
        enroll_crops = None
        if isinstance(enroll, (list, tuple)):  # crops already in memory (reid-bench follow --enroll-gt)
            enroll_crops = list(enroll)
        elif enroll is not None:
            enroll_crops = read_enroll_crops(enroll)
        # the source before the detector (whose load may warn or be slow); the output last, so
        # no log file is created when an earlier part is refused
        src = source if hasattr(source, "capture") else open_source(source, width, height, fps, realtime)
        opened.append(src)
        det = detector if hasattr(detector, "detect") else load_detector(detector, det_conf, det_iou, det_size)
        opened.append(det)
        out = output if hasattr(output, "send") else _open_output(output)
        opened.append(out)
        control = UdpControl(control_port) if control_port is not None else None
        opened.append(control)
        window = Window() if show else None
        opened.append(window)
        recorder = VideoRecorder(record, getattr(src, "fps", 0.0) or fps or 10.0) if record else None
        opened.append(recorder)
        sinks = FanOut(recorder, window) if (recorder or window) else None
        loop = FollowLoop(src, det, embedder, out, config, realtime=realtime, frame_sink=sinks, control=control)
        if not embedder.is_active:  # a runner the caller activated stays active after the run
            embedder.activate()
            opened.append(_Deactivate(embedder))
        if enroll_crops is not None:
            loop.lock.enroll_embeddings(embedder.embed(enroll_crops))
            log.info("enrolled %d crops from %s; searching for that person", len(enroll_crops),
                     "memory" if isinstance(enroll, (list, tuple)) else enroll)
        summary = loop.run(max_frames=max_frames)
    finally:
        for part in reversed(opened):
            _close_quietly(part)
    return summary


def _open_output(spec: Any) -> Any:
    """``open_output`` plus ``ros2`` / ``ros2:/topic`` for a geometry_msgs/Twist publisher."""
    from edgereid.runtime.outputs import Ros2TwistOutput, open_output

    if isinstance(spec, str) and (spec == "ros2" or spec.startswith("ros2:")):
        topic = spec[len("ros2:"):] if spec.startswith("ros2:") else ""
        return Ros2TwistOutput(topic or "/cmd_vel")
    return open_output(spec)


class _Deactivate:
    def __init__(self, runner: Any) -> None:
        self.runner = runner

    def close(self) -> None:
        self.runner.deactivate()


def _close_quietly(part: Any) -> None:
    if part is None or not hasattr(part, "close"):
        return
    try:
        part.close()
    except Exception as exc:  # closing must not hide the run's result or its error
        log.warning("closing %s failed: %s", type(part).__name__, exc)
