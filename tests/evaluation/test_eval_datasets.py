"""Dataset readers on small fixture trees: Market-1501 (junk and distractors), folders, CUHK03 .mat."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.evaluation.datasets import detect_format, read_cuhk03, read_folders, read_market1501, read_split


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")  # readers only look at names


@pytest.fixture
def market(tmp_path) -> Path:
    root = tmp_path / "Market-1501-v15.09.15"
    for name in ("0001_c1s1_001051_00.jpg", "0002_c2s1_000301_00.jpg", "-1_c1s1_000000_00.jpg"):
        _touch(root / "query" / name)
    for name in (
        "0001_c2s1_001101_01.jpg",  # valid match for query 0001 (other camera)
        "0001_c1s1_001051_01.jpg",  # same id, same camera: kept here, excluded per query by the metric
        "0002_c3s1_000401_02.jpg",
        "0000_c1s1_000151_01.jpg",  # distractor: stays in the gallery
        "0000_c4s2_000451_03.jpg",
        "-1_c1s1_000401_03.jpg",  # junk: left out
        "-1_c3s1_000401_04.jpg",
        "Thumbs.db",  # not an image
    ):
        _touch(root / "bounding_box_test" / name)
    _touch(root / "bounding_box_train" / "0003_c1s1_000001_00.jpg")
    return root


def test_market_reader_skips_junk_keeps_distractors(market):
    s = read_market1501(market)
    assert [p.name for p in s.query] == ["0001_c1s1_001051_00.jpg", "0002_c2s1_000301_00.jpg"]
    assert s.q_ids.tolist() == [1, 2] and s.q_cams.tolist() == [1, 2]
    assert s.g_ids.tolist() == [0, 0, 1, 1, 2]  # sorted names: 0000_c1, 0000_c4, 0001_c1, 0001_c2, 0002_c3
    assert s.g_cams.tolist() == [1, 4, 1, 2, 3]
    assert s.info["skipped_junk"] == 3 and s.info["gallery_distractors"] == 2
    assert s.valid_query_mask().tolist() == [True, True]
    assert s.summary()["num_gallery"] == 5


def test_detect_and_read_split_auto(market):
    assert detect_format(market) == "market1501"
    s = read_split(market, "auto", query_cam=7, variant="labeled")  # options other readers take are ignored
    assert s.fmt == "market1501" and len(s.gallery) == 5


def test_market_missing_folders_named(tmp_path):
    (tmp_path / "query").mkdir()
    with pytest.raises(InputError, match="bounding_box_test"):
        read_market1501(tmp_path)


def test_market_query_without_valid_match(tmp_path):
    _touch(tmp_path / "query" / "0005_c1s1_000001_00.jpg")
    _touch(tmp_path / "bounding_box_test" / "0005_c1s1_000002_00.jpg")  # same camera only
    s = read_market1501(tmp_path)
    assert s.valid_query_mask().tolist() == [False]


@pytest.fixture
def folders(tmp_path) -> Path:
    root = tmp_path / "pku"
    for pid in ("001", "007", "012"):
        for cam in (1, 2):
            for view in (1, 2):
                _touch(root / pid / f"{cam:02d}_{view}.png")
    _touch(root / "007" / "03_1.png")  # a third camera, neither side by default
    _touch(root / "README.txt")
    return root


def test_folders_reader_camera_sides(folders):
    s = read_folders(folders)
    assert len(s.query) == 6 and len(s.gallery) == 6
    assert s.q_ids.tolist() == [1, 1, 7, 7, 12, 12]
    assert set(s.q_cams.tolist()) == {1} and set(s.g_cams.tolist()) == {2}
    assert s.info["cameras_found"] == [1, 2, 3]
    assert detect_format(folders) == "folders"
    swapped = read_split(folders, "folders", query_cam=3, gallery_cam=1)
    assert swapped.q_ids.tolist() == [7] and len(swapped.gallery) == 6


def test_folders_missing_camera_is_clear(folders):
    with pytest.raises(InputError, match="query camera 5 has 0 images"):
        read_folders(folders, query_cam=5)


def test_unknown_layout_is_a_clear_error(tmp_path):
    _touch(tmp_path / "pics" / "a.jpg")
    with pytest.raises(InputError, match="no known dataset format"):
        detect_format(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        read_split(tmp_path / "nope")
    with pytest.raises(InputError, match="unknown dataset format"):
        read_split(tmp_path, "viper")


def _cuhk03_tree(root: Path) -> Path:
    savemat = pytest.importorskip("scipy.io", reason="CUHK03 .mat files need scipy").savemat

    names = ["1_001_1_01.png", "1_001_2_06.png", "1_002_1_01.png", "1_002_2_07.png", "2_005_1_02.png",
             "2_005_2_08.png"]
    for n in names:
        _touch(root / "images_labeled" / n)
    filelist = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        filelist[i, 0] = n
    savemat(root / "cuhk03_new_protocol_config_labeled.mat", {
        "filelist": filelist,
        "labels": np.array([[1], [1], [2], [2], [5], [5]], np.float64),
        "camId": np.array([[1], [2], [1], [2], [1], [2]], np.float64),
        "train_idx": np.array([[5], [6]], np.float64),  # 1-based, as in the official files
        "query_idx": np.array([[1], [3]], np.float64),
        "gallery_idx": np.array([[2], [4], [5], [6]], np.float64),
    })
    return root


def test_cuhk03_new_protocol_from_mat(tmp_path):
    root = _cuhk03_tree(tmp_path / "cuhk03")
    assert detect_format(root) == "cuhk03"
    s = read_cuhk03(root)
    assert [p.name for p in s.query] == ["1_001_1_01.png", "1_002_1_01.png"]
    assert s.q_ids.tolist() == [1, 2] and s.q_cams.tolist() == [1, 1]
    assert s.g_ids.tolist() == [1, 2, 5, 5] and s.g_cams.tolist() == [2, 2, 1, 2]
    assert all(p.parent.name == "images_labeled" for p in s.gallery)
    assert s.valid_query_mask().tolist() == [True, True]


def test_cuhk03_missing_images_and_variant(tmp_path):
    root = _cuhk03_tree(tmp_path / "cuhk03")
    (root / "images_labeled" / "1_002_2_07.png").unlink()
    with pytest.raises(InputError, match="missing"):
        read_cuhk03(root)
    with pytest.raises(InputError, match="cuhk03_new_protocol_config_detected.mat"):
        read_cuhk03(root, variant="detected")
