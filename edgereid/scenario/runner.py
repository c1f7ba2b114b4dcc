"""Run the real follow loop on a synthetic scene and score the lock.

The detector here is an *oracle*: it returns the ground-truth boxes of people at least
``min_visible`` visible, with optional box jitter and random misses (``dropout``), and a lower
score for partly hidden people (what a real detector does, and what ByteTrack's second
association is for). So the numbers measure tracking + target lock + the embedder, not the
person detector. Everything else (tracker, lock, gallery, embedder, command, messages) is the
production :class:`edgereid.runtime.loop.FollowLoop`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np

from edgereid.detections import Detections
from edgereid.runtime.config import FollowConfig
from edgereid.runtime.loop import FollowLoop
from edgereid.runtime.stats import FollowSummary
from edgereid.scenario.metrics import LockMetrics, lock_metrics
from edgereid.scenario.scene import GroundTruth, Scene


@dataclass
class SceneFrame:
    """The ``Frame`` shape of ``edgereid.runtime.sources`` (image, index, t_capture, t_wall)."""

    image: np.ndarray
    index: int
    t_capture: float
    t_wall: float


class SceneSource:
    """A frame source over a scene; keeps the ground truth of the frame it handed out last."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.next_index = 0
        self.is_streaming = True
        self.last_error: Optional[str] = None
        self.truths: List[GroundTruth] = []

    def capture(self, timeout: float = 1.0) -> Optional[SceneFrame]:
        if self.next_index >= len(self.scene):
            self.is_streaming = False
            return None
        image, truth = self.scene.render(self.next_index)
        self.truths.append(truth)
        frame = SceneFrame(image, self.next_index, time.monotonic(), time.time())
        self.next_index += 1
        return frame

    @property
    def current_truth(self) -> GroundTruth:
        return self.truths[-1]

    def close(self) -> None:
        self.is_streaming = False


class OracleDetector:
    """Ground-truth person boxes of the source's current frame.

    Args:
        source: the :class:`SceneSource` being run (its current frame's truth is used).
        dropout: probability that a visible person is missed in a frame.
        jitter: box noise, standard deviation as a fraction of the box height.
        min_visible: people less visible than this are not detected.
        seed: random seed (runs are reproducible).
    """

    def __init__(self, source: SceneSource, dropout: float = 0.0, jitter: float = 0.0,
                 min_visible: float = 0.5, seed: int = 0) -> None:
        self.source = source
        self.dropout = dropout
        self.jitter = jitter
        self.min_visible = min_visible
        self.rng = np.random.default_rng(seed)

    def detect(self, image: np.ndarray) -> Detections:
        truth = self.source.current_truth
        keep = truth.visible >= self.min_visible
        keep &= self.rng.random(len(keep)) >= self.dropout
        boxes = truth.boxes[keep].copy()
        heights = (boxes[:, 3] - boxes[:, 1])[:, None]
        boxes += self.rng.normal(0, 1, boxes.shape).astype(np.float32) * self.jitter * heights
        scores = np.where(truth.visible[keep] >= 0.8, 0.9, 0.45).astype(np.float32)
        return Detections(boxes, scores, np.zeros(len(boxes), np.int32))


class _Collector:
    def __init__(self) -> None:
        self.messages: List[Dict[str, Any]] = []

    def send(self, message: Dict[str, Any]) -> None:
        self.messages.append(message)

    def close(self) -> None:
        pass


@dataclass
class ScenarioRun:
    scene: str
    metrics: LockMetrics
    summary: FollowSummary
    messages: List[Dict[str, Any]]
    truths: List[GroundTruth]


def run_scene(scene: Scene, embedder: Any, config: FollowConfig | None = None, dropout: float = 0.1,
              jitter: float = 0.02, seed: int = 0, frame_sink: Any = None, detector: Any = None,
              similarity_scale: Dict[str, Any] | None = None) -> ScenarioRun:
    """Run the follow loop over ``scene`` with the oracle detector (or a real one) and score it.

    Args:
        scene: the scenario.
        embedder: an ``EmbedderRunner`` (activated here if it is not yet).
        config: follow thresholds (None = defaults).
        dropout, jitter, seed: oracle detector noise (see :class:`OracleDetector`).
        frame_sink: optional per-frame callback (e.g. an annotated-video recorder).
        detector: a real person detector (``detect(image) -> Detections``, e.g. ``load_detector``) instead
            of the oracle: what it misses, merges or cuts is what the car would see (the oracle flatters).
        similarity_scale: the bundle's measured scale (None: the embedder's bundle manifest, if any).
    """
    source = SceneSource(scene)
    if detector is None:
        detector = OracleDetector(source, dropout=dropout, jitter=jitter, seed=seed)
    collector = _Collector()
    loop = FollowLoop(source, detector, embedder, collector, config, frame_sink=frame_sink,
                      similarity_scale=similarity_scale)
    summary = loop.run()
    metrics = lock_metrics(source.truths, collector.messages)
    return ScenarioRun(scene.name, metrics, summary, collector.messages, source.truths)
