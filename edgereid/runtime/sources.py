"""Frame sources addressed by one URI: ``open_source(uri) -> FrameSource``.

The interface is jetson-utils' ``videoSource``: ``capture(timeout)`` returns a :class:`Frame` or
None (no frame in time), ``is_streaming`` turns False at the end of a file or folder.

URI forms:
    ``/dev/videoN`` or ``N``    V4L2 camera (MJPG, ``width/height/fps`` requested), live.
    ``csi://N``                 Jetson CSI camera through nvarguscamerasrc (GStreamer), live.
    ``rtsp://...``, ``http://``  network stream, live.
    a pipeline with ``!``       GStreamer pipeline ending in appsink (OpenCV built with GStreamer).
    a video file                every frame in order, or paced to the file's fps with ``realtime``.
    a folder                    its images in sorted order (jpg, png, bmp, tif, webp).

Live sources read in a background thread and hand out only the newest frame, so the follow
loop never works on a stale image; a camera that stops delivering is reopened with exponential
backoff while ``capture`` returns None and ``last_error`` says why (the loop commands STOP).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, List

import numpy as np

from edgereid.errors import InputError
from edgereid.lazy import require

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://")


@dataclass
class Frame:
    """One captured image.

    Attributes:
        image: (H, W, 3) uint8 BGR.
        index: 0-based frame index in the source (frames skipped by a live or realtime source
            leave gaps).
        t_capture: ``time.monotonic()`` when it was captured, for the latency budget.
        t_wall: ``time.time()`` at the same moment, for logs.
    """

    image: np.ndarray
    index: int
    t_capture: float
    t_wall: float


def valid_image(image: Any) -> bool:
    """True for a non-empty (H, W, 3) uint8 array."""
    return (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
            and image.size > 0 and image.dtype == np.uint8)


class FrameSource:
    """Base class. Subclasses implement ``capture_impl`` and ``close_impl``.

    Attributes:
        uri: what was opened.
        is_streaming: False once a file or folder has no more frames (or after close).
        last_error: why the last capture gave no frame (None when frames flow).
        fps: nominal frames per second (0.0 when unknown).
    """

    def __init__(self, uri: str, fps: float = 0.0) -> None:
        self.uri = uri
        self.fps = float(fps)
        self.is_streaming = True
        self.last_error: str | None = None
        self._closed = False

    def capture(self, timeout: float = 1.0) -> Frame | None:
        """The next frame, or None on timeout, end of stream or a bad frame (see ``last_error``)."""
        if not self.is_streaming:
            return None
        return self.capture_impl(max(0.0, float(timeout)))

    def capture_impl(self, timeout: float) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.is_streaming = False
            self.close_impl()

    def close_impl(self) -> None:
        """Release the device or file."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _frame(self, image: Any, index: int) -> Frame | None:
        """Wrap a decoded image, or record why it is unusable and return None."""
        if not valid_image(image):
            shape = getattr(image, "shape", None)
            self.last_error = f"{self.uri}: frame {index} is empty or not a 3-channel uint8 image ({shape})"
            log.warning(self.last_error)
            return None
        self.last_error = None
        return Frame(image, index, time.monotonic(), time.time())


class FolderSource(FrameSource):
    """Images of a folder in sorted name order; ``fps`` (if given) paces ``realtime`` playback."""

    def __init__(self, folder: str, fps: float | None = None, realtime: bool = False) -> None:
        super().__init__(folder, fps or 0.0)
        if not os.path.isdir(folder):
            raise InputError(f"Frame folder not found: {folder}.")
        self.paths = sorted(os.path.join(folder, n) for n in os.listdir(folder)
                            if n.lower().endswith(IMAGE_EXTENSIONS))
        if not self.paths:
            raise InputError(f"The folder {folder} holds no images; expected files ending in "
                             f"{', '.join(IMAGE_EXTENSIONS)}.")
        self.realtime = realtime and self.fps > 0
        self.next_index = 0
        self._t0: float | None = None

    def capture_impl(self, timeout: float) -> Frame | None:
        import cv2

        if self.realtime:
            self._t0 = _pace(self._t0, self.next_index, self.fps, timeout)
            if self._t0 is None:
                return None
            self.next_index = max(self.next_index, _due_index(self._t0, self.fps))
        if self.next_index >= len(self.paths):
            self.is_streaming = False
            return None
        index = self.next_index
        self.next_index += 1
        self.is_streaming = self.next_index < len(self.paths)
        image = cv2.imread(self.paths[index], cv2.IMREAD_COLOR)
        if image is None:
            self.last_error = f"cannot read image {self.paths[index]}"
            log.warning(self.last_error)
            return None
        return self._frame(image, index)


class VideoFileSource(FrameSource):
    """A video file: every frame in order, or paced to its fps (dropping frames) with ``realtime``."""

    def __init__(self, path: str, fps: float | None = None, realtime: bool = False) -> None:
        cv2 = require("cv2", "reading a video file")
        if not os.path.isfile(path):
            raise InputError(f"Video file not found: {path}.")
        self.cap = cv2.VideoCapture(path)
        if not self.cap.isOpened():
            raise InputError(f"OpenCV cannot open the video {path}; expected a video OpenCV's FFmpeg can "
                             "decode (mp4/avi/mkv...). How to fix: check the file, or re-encode it.")
        ok, first = self.cap.read()
        if not ok or first is None:
            self.cap.release()
            raise InputError(f"The video {path} opens but no frame can be decoded from it.")
        super().__init__(path, fps or self.cap.get(cv2.CAP_PROP_FPS) or 30.0)
        self.realtime = realtime
        self._pending: Any = first  # the decoded frame the next capture returns
        self.next_index = 0
        self._t0: float | None = None

    def capture_impl(self, timeout: float) -> Frame | None:
        if self.realtime:
            self._t0 = _pace(self._t0, self.next_index, self.fps, timeout)
            if self._t0 is None:
                return None
            due = _due_index(self._t0, self.fps)
            while self._pending is not None and self.next_index < due:  # behind: drop frames
                self._read_next()
        if self._pending is None:
            self.is_streaming = False
            return None
        index, image = self.next_index, self._pending
        self._read_next()
        self.is_streaming = self._pending is not None
        return self._frame(image, index)

    def _read_next(self) -> None:
        ok, image = self.cap.read()
        self.next_index += 1
        self._pending = image if ok else None

    def close_impl(self) -> None:
        self.cap.release()


def _due_index(t0: float, fps: float) -> int:
    """Index of the frame that should be on screen now, for playback started at ``t0``."""
    return int((time.monotonic() - t0) * fps)


def _pace(t0: float | None, index: int, fps: float, timeout: float) -> float | None:
    """Start the playback clock, or sleep until frame ``index`` is due (None if not within timeout)."""
    now = time.monotonic()
    if t0 is None:
        return now
    wait = t0 + index / fps - now
    if wait > timeout:
        time.sleep(timeout)
        return None
    if wait > 0:
        time.sleep(wait)
    return t0


class LiveSource(FrameSource):
    """A camera or network stream read by a background thread that keeps only the newest frame.

    Args:
        uri: for messages.
        opener: returns an opened ``cv2.VideoCapture``-like object (``isOpened``, ``read``,
            ``release``); called again to reopen after a failure.
        fps: nominal fps, for reports.
        backoff: first wait before a reopen, in seconds; doubled after each failed try.
        backoff_max: cap of that wait, in seconds.
    """

    def __init__(self, uri: str, opener: Callable[[], Any], fps: float = 0.0,
                 backoff: float = 0.5, backoff_max: float = 8.0) -> None:
        super().__init__(uri, fps)
        self.opener, self.backoff, self.backoff_max = opener, float(backoff), float(backoff_max)
        self.frames_read = 0
        self.frames_dropped = 0
        self.reopen_count = 0
        self._latest: Frame | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.cap = opener()
        if self.cap is None or not self.cap.isOpened():
            raise InputError(f"Cannot open the live source {uri}. How to fix: check that the camera is "
                             "connected (ls /dev/video*, v4l2-ctl --list-devices) or the stream URL is reachable.")
        self._thread = threading.Thread(target=self._run, name=f"source:{uri}", daemon=True)
        self._thread.start()

    def capture_impl(self, timeout: float) -> Frame | None:
        with self._cond:
            if self._latest is None:
                self._cond.wait(timeout)
            frame, self._latest = self._latest, None
        return frame

    def _run(self) -> None:
        delay = self.backoff
        while not self._stop.is_set():
            if self.cap is None:
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, self.backoff_max)
                self.cap = self._reopen()
                if self.cap is None:
                    continue
                delay = self.backoff
            ok, image = self.cap.read()
            index = self.frames_read
            self.frames_read += 1
            if not ok:
                self.last_error = f"{self.uri}: camera stopped delivering frames; reopening (backoff)"
                log.warning(self.last_error)
                self.cap.release()
                self.cap = None
                with self._cond:  # a frame from before the outage is stale by the time we are back
                    self._latest = None
                continue
            frame = self._frame(image, index)
            if frame is not None:
                with self._cond:
                    if self._latest is not None:
                        self.frames_dropped += 1
                    self._latest = frame
                    self._cond.notify_all()

    def _reopen(self) -> Any:
        try:
            cap = self.opener()
        except Exception as exc:  # a reopen must never kill the reader thread
            cap, why = None, str(exc)
        else:
            why = "not opened"
        if cap is None or not cap.isOpened():
            self.last_error = f"{self.uri}: reopen failed ({why}); retrying"
            log.warning(self.last_error)
            return None
        self.reopen_count += 1
        log.warning("%s: reopened", self.uri)
        return cap

    def close_impl(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        if self.cap is not None:
            self.cap.release()


def gstreamer_available() -> bool:
    """True when this OpenCV build can run GStreamer pipelines."""
    cv2 = require("cv2", "a GStreamer source")
    return re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()) is not None


def csi_pipeline(sensor_id: int, width: int = 1280, height: int = 720, fps: float = 30) -> str:
    """GStreamer pipeline for a Jetson CSI camera (nvarguscamerasrc) into an OpenCV BGR appsink."""
    return (f"nvarguscamerasrc sensor-id={int(sensor_id)} ! video/x-raw(memory:NVMM), width={int(width)}, "
            f"height={int(height)}, framerate={int(round(fps))}/1 ! nvvidconv ! video/x-raw, format=BGRx ! "
            "videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false")


def _camera_opener(device: Any, width: int | None, height: int | None, fps: float | None) -> Callable[[], Any]:
    def open_camera() -> Any:
        import cv2

        cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
        if cap.isOpened():
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
            for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                                (cv2.CAP_PROP_FPS, fps)):
                if value:
                    cap.set(prop, float(value))
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return cap

    return open_camera


def _stream_opener(uri: str, api: str) -> Callable[[], Any]:
    def open_stream() -> Any:
        import cv2

        return cv2.VideoCapture(uri, getattr(cv2, api))

    return open_stream


def open_source(uri: str | int, width: int | None = None, height: int | None = None,
                fps: float | None = None, realtime: bool = False) -> FrameSource:
    """Open a frame source from a URI (see the module docstring for the forms).

    Args:
        uri: camera device/index, ``csi://N``, stream URL, GStreamer pipeline, video file or folder.
        width, height, fps: requested camera mode (V4L2 and CSI); fps also paces a realtime
            file or folder.
        realtime: files and folders drop frames to keep the wall-clock pace instead of
            yielding every frame.

    Raises:
        InputError: nothing to open there, or a form this OpenCV build cannot read.
    """
    text = str(uri).strip()
    if text.startswith("file://"):
        text = text[len("file://"):]
    if "!" in text:
        if not gstreamer_available():
            raise InputError("A GStreamer pipeline was given but this OpenCV is built without GStreamer "
                             "(cv2.getBuildInformation() says GStreamer: NO). How to fix: use JetPack's "
                             "OpenCV on the Jetson, or a /dev/videoN camera or a file.")
        return LiveSource(text, _stream_opener(text, "CAP_GSTREAMER"), fps or 0.0)
    csi = re.fullmatch(r"csi://(\d+)", text)
    if csi:
        return open_source(csi_pipeline(int(csi.group(1)), width or 1280, height or 720, fps or 30),
                           fps=fps or 30)
    if text.lower().startswith(LIVE_SCHEMES):
        return LiveSource(text, _stream_opener(text, "CAP_FFMPEG"), fps or 0.0)
    if re.fullmatch(r"\d+", text) or text.startswith("/dev/video"):
        if text.startswith("/dev/") and not os.path.exists(text):
            raise InputError(f"No camera at {text}. Cameras here: {', '.join(list_cameras()) or 'none'}.")
        device: Any = int(text) if text.isdigit() else text
        return LiveSource(text, _camera_opener(device, width, height, fps), fps or 0.0)
    if os.path.isdir(text):
        return FolderSource(text, fps, realtime)
    if os.path.isfile(text):
        return VideoFileSource(text, fps, realtime)
    raise InputError(f"No such source: {text!r}. Expected /dev/videoN or an index, csi://N, rtsp://..., a "
                     "GStreamer pipeline (with '!'), a video file or a folder of images.")


def list_cameras() -> List[str]:
    """``/dev/video*`` device nodes present on this machine (Linux)."""
    try:
        return sorted(os.path.join("/dev", n) for n in os.listdir("/dev") if n.startswith("video"))
    except OSError:
        return []
