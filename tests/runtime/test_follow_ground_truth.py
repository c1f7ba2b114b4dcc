"""The follow loop on real footage, judged against human labels (the promise: never drive toward
someone else). PETS09-S2L1 with its MOT ground truth, and the shared walking video with our labels
(tests/data/one_by_one_gt.txt, checked by eye; tests/data/one_by_one_gt.md says how)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgereid.benchmarks.follow import bench_follow

DATA = Path(__file__).resolve().parents[1] / "data"
pytestmark = pytest.mark.assets


@pytest.fixture(scope="module")
def osnet_scaled(tmp_path_factory, osnet_onnx, pku_dir):
    """OSNet exported as a user would, with labelled crops: the manifest carries its similarity scale."""
    pytest.importorskip("onnxslim", reason="exporting needs the export extra (not on the car)")
    from edgereid.export.api import export_bundle

    out = tmp_path_factory.mktemp("osnet") / "bundle"
    bundle = export_bundle(out, onnx=str(osnet_onnx), target="cpu", calib_data=str(pku_dir), calib_size=64,
                           progress=False)
    scale = bundle.manifest.extra["similarity"]
    assert scale["identities"] >= 10 and scale["impostor"]["p50"] < scale["impostor"]["p999"]
    return out


@pytest.fixture(scope="module")
def pets(assets_dir):
    folder = assets_dir / "video" / "pets09_s2l1"
    if not (folder / "gt.txt").exists():
        pytest.skip(f"needs {folder} (PETS09-S2L1 with MOT ground truth)")
    return folder


def test_pets09_person_4_enrolled_from_her_crops_is_followed_and_nobody_else(osnet_scaled, pets, yolox_onnx):
    report = bench_follow(str(pets / "pets09_s2l1_480x360.mp4"), str(osnet_scaled), str(yolox_onnx),
                          max_frames=None, det_conf=0.3, tegrastats=False, gt=str(pets / "gt.txt"), target_id=4,
                          gt_frames="529-794", enroll_gt="506-527:3")
    gt = report["ground_truth"]
    assert gt["target_frames"] == 266
    assert gt["locked_on_target"] >= 0.85, gt
    assert gt["toward_other_frames"] == 0, gt


def test_walking_video_first_walker_followed_then_nobody_after_her(osnet_scaled, walking_video, yolox_onnx):
    report = bench_follow(str(walking_video), str(osnet_scaled), str(yolox_onnx), max_frames=None, det_conf=0.3,
                          tegrastats=False, gt=str(DATA / "one_by_one_gt.txt"), target_id=1)
    gt = report["ground_truth"]
    assert gt["target_frames"] == 136
    assert gt["locked_on_target"] >= 0.80, gt
    assert gt["toward_other_frames"] == 0, gt  # the five people after her: never commanded toward
    assert report["states"].get("LOCKED", 0) <= 140  # locked only while she was there
