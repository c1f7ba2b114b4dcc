"""The follow loop: capture -> detect -> track -> embed (only what needs checking) -> lock -> command.

One JSON message per processed frame (also a STOP heartbeat when no frame arrives in
``capture_timeout_s``). Message schema (version 1; the keys are stable, docs/follow.md)::

    frame       int | null   0-based index of the source frame (null: no frame arrived)
    seq         int          message counter, 0-based, +1 per message
    t           float        Unix time (s) when the message was sent
    state       str          SEARCHING | ENROLLING | LOCKED | LOST
    target      {box: [x1,y1,x2,y2] px, similarity: float|null, track_id: int|null, coasting: bool} | null
    command     {linear_x: m/s, angular_z: rad/s (+ = left), stop: bool}  zero unless LOCKED
    latency_ms  {capture, detect, track, embed, lock, total}  total = age of the frame at send
    fps         float        processed frames per second over the last 30 messages
    reason      str          only when command.stop: why the car must stop
    event       str          only when the lock changed state this frame

Heartbeat: every message is one. A receiver must stop the car on its own when no message has
arrived for ``heartbeat_timeout_s`` (1 s by default, as koide3's monocular_person_following).

The loop never crashes mid-run: an exception in a stage becomes a STOP with that reason, is
logged to stderr, and the next frame is processed as usual.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any, Callable, Deque, Dict, List, Optional

import numpy as np

from edgereid.detections import Detections
from edgereid.errors import BackendError
from edgereid.runtime.command import CommandMapper, FollowCommand
from edgereid.runtime.config import FollowConfig
from edgereid.runtime.stats import FollowSummary, LatencyStats, reason_category
from edgereid.runtime.target_lock import LockResult, LockState, TargetLock
from edgereid.runtime.thresholds import measured_scale
from edgereid.runtime.tracker import ByteTracker

log = logging.getLogger("edgereid.follow")

SCHEMA_VERSION = 1


class FollowLoop:
    """Runs the follow pipeline over a frame source.

    Args:
        source: ``capture(timeout) -> Frame | None``, ``is_streaming`` (``edgereid.runtime.sources``).
        detector: ``detect(image_bgr) -> Detections`` of people.
        embedder: an ``EmbedderRunner`` (activated by :meth:`run`, or by the caller).
        output: ``send(dict)`` (``edgereid.runtime.outputs``); None = keep messages in
            :attr:`last_message` only.
        config: all thresholds; None = defaults.
        realtime: enforce the latency budget on frames (live sources always do; a file read
            frame by frame does not, since then the frame's age only measures our own work).
        frame_sink: called with (image, tracks, lock result, command, message) after each frame
            (``annotate.VideoRecorder`` / window); its errors are logged, never fatal.
        control: ``poll() -> list[str]`` of operator commands (``"enroll"``); see ``control.py``.
        similarity_scale: a manifest ``similarity`` block: the lock derives the thresholds the config
            leaves at None from it (``thresholds.py``); None = the embedder's bundle's block, or, for
            a bare runner or an unmeasured bundle, strict fallback thresholds.
    """

    def __init__(self, source: Any, detector: Any, embedder: Any, output: Any = None,
                 config: FollowConfig | None = None, realtime: bool = False,
                 frame_sink: Optional[Callable[..., None]] = None, control: Any = None,
                 similarity_scale: Optional[Dict[str, Any]] = None) -> None:
        self.source = source
        self.detector = detector
        self.embedder = embedder
        self.output = output
        self.config = config or FollowConfig()
        self.enforce_budget = bool(realtime or is_live(source))
        self.frame_sink = frame_sink
        self.control = control
        self.tracker = ByteTracker(self.config.tracker)
        if similarity_scale is None:
            similarity_scale = measured_scale(embedder)
        self.lock = TargetLock(self.config.lock, self.config.gallery, quality_config=self.config.quality,
                               similarity_scale=similarity_scale)
        self.mapper = CommandMapper(self.config.command)
        self.stats = LatencyStats()
        self.summary = FollowSummary()
        self.last_message: Optional[Dict[str, Any]] = None
        self._seq = 0
        self._send_times: Deque[float] = collections.deque(maxlen=30)
        self._last_reason: Optional[str] = None
        self._sink_failed = False
        self._output_failing = False
        self._failures: Dict[str, int] = {}

    # -- public --------------------------------------------------------------------------------
    def run(self, max_frames: int | None = None) -> FollowSummary:
        """Process frames until the source ends (or ``max_frames``); returns the summary."""
        start = time.monotonic()
        activated = not getattr(self.embedder, "is_active", True)
        if activated:
            self.embedder.activate()
        try:
            while max_frames is None or self.summary.frames < max_frames:
                if self.step() is None:
                    break
        finally:
            if activated:
                self.embedder.deactivate()
            self._finish_summary(time.monotonic() - start)
        return self.summary

    def step(self) -> Optional[Dict[str, Any]]:
        """Capture one frame and process it; a STOP heartbeat on timeout; None at end of stream."""
        self._poll_control()
        t0 = time.monotonic()
        error = None
        try:
            frame = self.source.capture(timeout=self.config.loop.capture_timeout_s)
        except Exception as exc:  # a source must not take the loop down
            frame = None
            error = f"capture raised {type(exc).__name__}: {exc}"
            self._log_failure("capture", exc)
            time.sleep(min(self.config.loop.capture_timeout_s, 0.1))  # no busy loop on a dead device
        capture_ms = (time.monotonic() - t0) * 1e3
        if frame is None:
            if not getattr(self.source, "is_streaming", False):
                return None
            error = error or getattr(self.source, "last_error", None)
            reason = f"no frame from the source: {error}" if error else "no frame from the source"
            return self._emit(None, self.lock.state, None, self.mapper.stop(reason), {"capture": capture_ms})
        return self.process(frame, capture_ms)

    def process(self, frame: Any, capture_ms: float = 0.0) -> Dict[str, Any]:
        """Run detect -> track -> embed -> lock -> command on one ``Frame``; returns the message."""
        latency: Dict[str, float] = {"capture": capture_ms}
        image = getattr(frame, "image", None)
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.size == 0:
            shape = getattr(image, "shape", None)
            return self._finish_frame(frame, None, None, [f"empty frame: received image of shape {shape}"], latency)
        reasons: List[str] = []
        detections = self._timed("detect", latency, reasons, self.detector.detect, image)
        tracks = None
        if detections is not None:
            tracks = self._timed("track", latency, reasons, self.tracker.update, detections)
        result = None
        if tracks is not None:
            embeddings = self._timed("embed", latency, reasons, self._embed, image, tracks)
            tracks.embeddings = embeddings
            size = (image.shape[1], image.shape[0])
            t_now = float(getattr(frame, "t_capture", time.monotonic()))
            result = self._timed("lock", latency, reasons, self.lock.update, tracks, size, t_now,
                                 self.tracker.predicted_boxes())
        return self._finish_frame(frame, tracks, result, reasons, latency)

    def close(self) -> None:
        for part in (self.output, self.source):
            try:
                if part is not None and hasattr(part, "close"):
                    part.close()
            except Exception as exc:  # closing must not hide the run's result
                log.warning("closing %s failed: %s", type(part).__name__, exc)

    # -- stages --------------------------------------------------------------------------------
    def _embed(self, image: np.ndarray, tracks: Detections) -> Optional[np.ndarray]:
        """(n, D) embeddings with NaN rows for boxes the lock does not need this frame, or None."""
        need = self.lock.needs_embedding(tracks, (image.shape[1], image.shape[0]))
        rows, crops = [], []
        h, w = image.shape[:2]
        for row in np.flatnonzero(need):
            x1, y1, x2, y2 = (int(round(float(v))) for v in tracks.xyxy[row])
            x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
            if x2 - x1 >= 2 and y2 - y1 >= 2:
                rows.append(row)
                crops.append(image[y1:y2, x1:x2])
        if not crops:
            return None
        feats = np.asarray(self.embedder.embed(crops), np.float32)
        if feats.ndim != 2 or len(feats) != len(crops) or not np.all(np.isfinite(feats)):
            raise BackendError(f"the embedder returned unusable embeddings (shape {feats.shape}, "
                               f"finite: {bool(np.all(np.isfinite(feats)))})")
        out = np.full((len(tracks), feats.shape[1]), np.nan, np.float32)
        out[rows] = feats
        return out

    def _timed(self, stage: str, latency: Dict[str, float], reasons: List[str], fn: Callable, *args: Any) -> Any:
        t0 = time.monotonic()
        try:
            return fn(*args)
        except Exception as exc:
            self._log_failure(stage, exc)
            reasons.append(f"{stage} failed: {type(exc).__name__}: {exc}")
            return None
        finally:
            latency[stage] = (time.monotonic() - t0) * 1e3

    # -- command and message -------------------------------------------------------------------
    def _finish_frame(self, frame: Any, tracks: Optional[Detections], result: Optional[LockResult],
                      reasons: List[str], latency: Dict[str, float]) -> Dict[str, Any]:
        state = result.state if result is not None else self.lock.state
        t_capture = float(getattr(frame, "t_capture", time.monotonic()))
        age_s = time.monotonic() - t_capture
        if not reasons and self.enforce_budget and age_s > self.config.loop.latency_budget_s:
            reasons.append(f"stale frame: {age_s * 1e3:.0f} ms old > budget "
                           f"{self.config.loop.latency_budget_s * 1e3:.0f} ms")
        if reasons:
            command = self.mapper.stop(reasons[0])
        elif result is None or state is not LockState.LOCKED or result.box is None:
            command = self.mapper.stop(f"target {state.value.lower()}")
        elif result.hold is not None:  # locked, but this frame's evidence is unsure: stop, keep the lock
            command = self.mapper.stop(f"target unconfirmed: {result.hold}")
        else:
            command = self.mapper.follow(result.box, frame.image.shape[1], result.enroll_height, t_capture)
        latency["total"] = (time.monotonic() - t_capture) * 1e3
        message = self._emit(getattr(frame, "index", None), state, result, command, latency)
        self.summary.frames += 1
        self.summary.state_frames[state.value] = self.summary.state_frames.get(state.value, 0) + 1
        if state is LockState.LOCKED and self.summary.first_locked_frame is None:
            self.summary.first_locked_frame = message["frame"]
        image = getattr(frame, "image", None)
        if (self.frame_sink is not None and not self._sink_failed and isinstance(image, np.ndarray)
                and image.ndim == 3 and image.size > 0):
            try:
                self.frame_sink(frame.image, tracks, result, command, message)
            except Exception as exc:
                self._sink_failed = True
                log.error("recording/display failed, disabled for the rest of the run: %s", exc)
        return message

    def _emit(self, index: Optional[int], state: LockState, result: Optional[LockResult],
              command: FollowCommand, latency: Dict[str, float]) -> Dict[str, Any]:
        now = time.monotonic()
        self._send_times.append(now)
        span = self._send_times[-1] - self._send_times[0]
        fps = (len(self._send_times) - 1) / span if span > 0 else 0.0
        target = None
        if result is not None and result.box is not None:
            target = {"box": [round(float(v), 1) for v in result.box],
                      "similarity": None if result.similarity is None else round(result.similarity, 4),
                      "track_id": result.track_id, "coasting": bool(result.coasting)}
        message: Dict[str, Any] = {
            "frame": None if index is None else int(index), "seq": self._seq, "t": round(time.time(), 4),
            "state": state.value, "target": target, "command": command.to_dict(),
            "latency_ms": {k: round(v, 2) for k, v in latency.items()}, "fps": round(fps, 2),
        }
        if command.stop and command.reason:
            message["reason"] = command.reason
            category = reason_category(command.reason)
            self.summary.stop_reasons[category] = self.summary.stop_reasons.get(category, 0) + 1
        if result is not None and result.event:
            message["event"] = result.event
            log.info("frame %s: %s", index, result.event)
        self._log_reason_change(command.reason if command.stop else None)
        self._seq += 1
        self.summary.messages += 1
        self.stats.add(latency)
        self.last_message = message
        if self.output is not None:
            try:
                self.output.send(message)
                self._output_failing = False
            except Exception as exc:  # the receiver's heartbeat timeout stops the car
                if not self._output_failing:
                    log.error("output failed (logged once until it recovers): %s", exc)
                self._output_failing = True
        return message

    # -- small helpers -------------------------------------------------------------------------
    def _poll_control(self) -> None:
        if self.control is None:
            return
        try:
            commands = self.control.poll()
        except Exception as exc:
            log.error("control channel failed: %s", exc)
            return
        for cmd in commands:
            if cmd == "enroll":
                log.info("operator command: enroll the person in front")
                self.lock.request_enrollment()
            else:
                log.warning("unknown operator command %r ignored (known: enroll)", cmd)

    def _log_failure(self, stage: str, exc: BaseException) -> None:
        """Count every failure; log the first of a kind and then every 100th (no log flood at 30 FPS)."""
        self.summary.errors += 1
        key = f"{stage}:{type(exc).__name__}"
        count = self._failures.get(key, 0)
        if len(self._failures) < 64 or key in self._failures:  # bounded
            self._failures[key] = count + 1
        if count % 100 == 0:
            repeat = f" (x{count + 1})" if count else ""
            log.error("%s failed%s: %s: %s (commanding STOP, continuing)", stage, repeat, type(exc).__name__, exc)

    def _log_reason_change(self, reason: Optional[str]) -> None:
        category = None if reason is None else reason_category(reason)
        if category != self._last_reason:
            if category is not None and not category.startswith("target"):
                log.warning("STOP: %s", reason)
            self._last_reason = category

    def _finish_summary(self, seconds: float) -> None:
        self.summary.seconds = round(seconds, 3)
        self.summary.fps = round(self.summary.frames / seconds, 3) if seconds > 0 else 0.0
        self.summary.latency_ms = self.stats.summary()


def is_live(source: Any) -> bool:
    """True for cameras and streams (their frames age in real time), False for files and folders."""
    flag = getattr(source, "is_live", None)
    if flag is not None:
        return bool(flag)
    from edgereid.runtime.sources import LiveSource

    return isinstance(source, LiveSource)
