"""`make demo` runs as a test: export, then follow in the offline scene (STYLE rule 27)."""

from __future__ import annotations

import json

import cv2
import pytest

pytest.importorskip("torch")
pytest.importorskip("ultralytics")  # the demo scene's photos ship inside the Ultralytics wheel


@pytest.mark.slow
def test_demo_exports_and_follows(tmp_path):
    from edgereid.demo import run_demo

    summary = run_demo(tmp_path, frames=40)
    assert {"onnx", "onnx_int8_qdq", "calib_cache", "trtexec_script", "dla_report"} <= set(summary["xavier_files"])
    manifest = json.loads((tmp_path / "rga_sc-xavier-int8" / "manifest.json").read_text())
    assert manifest["arch"] == "rga_sc" and manifest["precision"] == "int8"
    messages = [json.loads(line) for line in (tmp_path / "follow.jsonl").read_text().splitlines()]
    assert len(messages) == 40
    assert [m["frame"] for m in messages] == list(range(40))
    assert {"seq", "t", "state", "target", "command", "latency_ms"} <= set(messages[0])
    # the car moves only while LOCKED; the person in front is enrolled within the first frames
    assert all(m["command"]["linear_x"] == 0.0 for m in messages if m["state"] != "LOCKED")
    assert sum(m["state"] == "LOCKED" for m in messages) >= 20
    video = cv2.VideoCapture(str(tmp_path / "follow.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 40
