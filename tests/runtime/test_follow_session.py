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
    for i, crop in enumerate(load_views(pku_dir, "003", 2, BACK)):  # the other camera's look
        cv2.imwrite(str(enroll / f"{i}.png"), crop)
    scene = build_scenarios(pku_dir, "003", ["024", "027"], "021", frames=60)["cross_different"]
    source = SceneSource(scene)
    out = Collect()
    runner = OnnxruntimeEmbedder(str(osnet_onnx), PreprocessSpec(256, 128), threads=1).activate()
    summary = run_follow(source, runner, OracleDetector(source, seed=0), out, enroll=enroll)
    assert runner.is_active  # the caller's runner is left as it was given
    assert summary.frames == 60
    states = [m["state"] for m in out.messages]
    assert states[0] == "LOST" and "SEARCHING" not in states and "ENROLLING" not in states
    metrics = lock_metrics(source.truths, out.messages)
    assert metrics.enrolled_frame is not None and metrics.enrolled_frame <= 5
    assert metrics.lock_precision == 1.0 and metrics.switches == 0
    runner.deactivate()
