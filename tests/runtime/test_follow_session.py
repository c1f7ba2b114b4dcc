"""run_follow from Python: ready-made parts, --enroll crops, caller's runner stays active."""

from __future__ import annotations

import cv2
import pytest

from edgereid.preprocess import PreprocessSpec
from edgereid.runtime.embedder import OnnxruntimeEmbedder
from edgereid.runtime.session import run_follow
from edgereid.scenario.library import BACK, build_scenarios, load_views
from edgereid.scenario.metrics import lock_metrics
from edgereid.scenario.runner import OracleDetector, SceneSource


class Collect:
    def __init__(self):
        self.messages = []

    def send(self, message):
        self.messages.append(message)

    def close(self):
        pass


@pytest.mark.assets
def test_enroll_dir_starts_lost_and_acquires_only_the_enrolled_person(tmp_path, pku_dir, osnet_onnx):
    enroll = tmp_path / "enroll"
    enroll.mkdir()
    # the scene's own camera: at a false-accept rate of 1e-3 OSNet x0.25 re-identifies only a quarter of
    # PKU's cross-camera pairs (manifest genuine_below_far_1e-3 ~0.75), so across cameras the lock waits
    for i, crop in enumerate(load_views(pku_dir, "003", 1, BACK)):
        cv2.imwrite(str(enroll / f"{i}.png"), crop)
    scene = build_scenarios(pku_dir, "003", ["024", "027"], "021", frames=60)["cross_different"]
    source = SceneSource(scene)
    out = Collect()
    runner = OnnxruntimeEmbedder(str(osnet_onnx), PreprocessSpec(256, 128), threads=1).activate()
    # a bare runner carries no bundle, so no similarity scale: measure it on identities not in the scene
    from edgereid.evaluation.similarity import measure_bundle_similarity
    from edgereid.runtime.config import FollowConfig
    from edgereid.runtime.thresholds import resolve_thresholds

    others = [pid for pid in sorted(p.name for p in pku_dir.iterdir()) if pid not in {"003", "024", "027", "021"}][:12]
    crops = [c for pid in others for c in load_views(pku_dir, pid, 1, BACK)]
    labels = [int(pid) for pid in others for _ in BACK]
    config = resolve_thresholds(FollowConfig(), measure_bundle_similarity(runner, crops, labels))
    summary = run_follow(source, runner, OracleDetector(source, seed=0), out, config, enroll=enroll)
    assert runner.is_active  # the caller's runner is left as it was given
    assert summary.frames == 60
    states = [m["state"] for m in out.messages]
    assert states[0] == "LOST" and "SEARCHING" not in states and "ENROLLING" not in states
    metrics = lock_metrics(source.truths, out.messages)
    assert metrics.enrolled_frame is not None and metrics.enrolled_frame <= 5
    assert metrics.lock_precision == 1.0 and metrics.switches == 0
    runner.deactivate()
