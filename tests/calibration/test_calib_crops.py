from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgereid.calibration.crops import (
    cut_crops,
    load_calibration_set,
    load_crop_dir,
    sample_indices,
    split_by_identity,
)
from edgereid.detections import Detections
from edgereid.errors import InputError


def test_sample_indices_deterministic_and_distinct():
    a = sample_indices(100, 10, seed=3)
    assert a == sample_indices(100, 10, seed=3)
    assert a != sample_indices(100, 10, seed=4)
    assert len(set(a)) == 10 and a == sorted(a) and max(a) < 100
    assert sample_indices(5, 10, seed=0) == [0, 1, 2, 3, 4]


def test_split_by_identity_never_shares_people():
    labels = [(pid, cam) for pid in range(10) for cam in (1, 2)] + [None, (-1, 1)]
    calib, hold = split_by_identity(labels, 0.3, seed=0)
    held_ids = {labels[i][0] for i in hold}
    calib_ids = {labels[i][0] for i in calib if labels[i] is not None}
    assert len(held_ids) == 3
    assert not held_ids & calib_ids
    assert len(calib) + len(hold) == len(labels)
    assert labels.index(None) in calib  # unlabelled crops calibrate


def _write_crops(root: Path, pids=(1, 2, 3, 4), cams=(1, 2), per=2) -> None:
    rng = np.random.default_rng(0)
    for pid in pids:
        d = root / f"{pid:03d}"
        d.mkdir(parents=True)
        for cam in cams:
            for k in range(per):
                cv2.imwrite(str(d / f"{cam}_{k}.png"), rng.integers(0, 255, (40, 20, 3), dtype=np.uint8))


def test_load_crop_dir_labels_and_split(tmp_path):
    _write_crops(tmp_path)
    cs = load_crop_dir(tmp_path, calib_size=6, seed=0, holdout=0.25)
    assert len(cs.calib) == 6
    assert len(cs.holdout) == 4  # one identity (2 cams x 2 crops)
    assert {lab[0] for lab in cs.holdout_labels} and len({lab[0] for lab in cs.holdout_labels}) == 1
    assert all(c.shape == (40, 20, 3) and c.dtype == np.uint8 for c in cs.calib)
    again = load_crop_dir(tmp_path, calib_size=6, seed=0, holdout=0.25)
    assert all(np.array_equal(a, b) for a, b in zip(cs.calib, again.calib))


def test_missing_empty_unreadable_too_few(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_calibration_set(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        load_calibration_set(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="cannot be read"):
        load_calibration_set(bad, calib_size=1, holdout=0.0)
    few = tmp_path / "few"
    _write_crops(few, pids=(1, 2), per=1)
    with pytest.raises(InputError, match="--calib-size"):
        load_calibration_set(few, calib_size=50)


def test_cut_crops_clips_and_skips_tiny():
    frame = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3).astype(np.uint8)
    boxes = np.array([[-10, 10, 50, 90], [100, 20, 105, 25], [150, 0, 260, 120]], np.float32)
    dets = Detections(xyxy=boxes, scores=np.ones(3, np.float32))
    crops = cut_crops(frame, dets)
    assert [c.shape for c in crops] == [(80, 50, 3), (100, 50, 3)]
    assert np.array_equal(crops[0], frame[10:90, 0:50])


@pytest.mark.assets
def test_video_crops_with_detector(walking_video, yolox_onnx):
    pytest.importorskip("edgereid.runtime.detector")
    cs = load_calibration_set(walking_video, calib_size=4, holdout=0.2, detector_path=str(yolox_onnx))
    assert len(cs.calib) == 4 and cs.holdout and cs.holdout_labels is None
    assert cs.source["kind"] == "video"


@pytest.mark.assets
def test_frame_folder_uses_every_photo(tmp_path, assets_dir):
    """The demo's case: the two street photos as a frame folder, crops cut by a stub detector."""
    import shutil

    for name in ("bus.jpg", "zidane.jpg"):
        shutil.copy(assets_dir / "images" / name, tmp_path / name)

    class TwoBoxes:
        calls = 0

        def detect(self, frame):
            TwoBoxes.calls += 1
            return Detections(xyxy=np.array([[0, 0, 40, 80], [50, 10, 90, 100]], np.float32),
                              scores=np.ones(2, np.float32))

    from edgereid.calibration.crops import load_frames_or_video

    cs = load_frames_or_video(tmp_path, calib_size=2, holdout=0.25, detector=TwoBoxes())
    assert TwoBoxes.calls == 2
    assert len(cs.calib) == 2 and len(cs.holdout) >= 1 and cs.source["kind"] == "frames"
