"""Follow-scenario generator and benchmark: synthetic scenes with ground truth, run through the real
follow loop (with an oracle detector), scored per frame. Needs numpy and OpenCV (cv2 lazily).

The offline demo scene lives in :mod:`edgereid.scenario.demo` (``python -m edgereid.scenario.demo OUT_DIR``).
"""

from __future__ import annotations

from edgereid.scenario.library import build_scenarios, rank_by_likeness
from edgereid.scenario.metrics import LockMetrics, classify_lock, lock_metrics
from edgereid.scenario.runner import OracleDetector, ScenarioRun, SceneSource, run_scene
from edgereid.scenario.scene import Actor, GroundTruth, Scene, make_background

__all__ = [
    "Actor",
    "GroundTruth",
    "LockMetrics",
    "OracleDetector",
    "ScenarioRun",
    "Scene",
    "SceneSource",
    "build_scenarios",
    "classify_lock",
    "lock_metrics",
    "make_background",
    "rank_by_likeness",
    "run_scene",
]
