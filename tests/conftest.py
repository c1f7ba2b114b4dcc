"""Shared fixtures. Real data comes from ../shared/assets (never copied); tests that need it
are marked ``assets`` and skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")

ASSETS = Path(__file__).resolve().parents[1].parent / "shared" / "assets"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the shared real-data assets; see ../shared/assets/README.md)")
    return path


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    return _need(ASSETS)


@pytest.fixture(scope="session")
def osnet_onnx() -> Path:
    return _need(ASSETS / "reid" / "osnet_x0_25_msmt17.onnx")


@pytest.fixture(scope="session")
def pku_dir() -> Path:
    return _need(ASSETS / "reid_data" / "pku_reid")


@pytest.fixture(scope="session")
def yolox_onnx() -> Path:
    return _need(ASSETS / "detectors" / "yolox_nano.onnx")


@pytest.fixture(scope="session")
def walking_video() -> Path:
    return _need(ASSETS / "video" / "one-by-one-person-detection.mp4")


@pytest.fixture(scope="session")
def pku_crops(pku_dir: Path) -> list[np.ndarray]:
    """A handful of real BGR person crops (8 images of 4 people)."""
    import cv2

    paths = sorted(pku_dir.glob("*/*.png"))[:64:8]
    return [cv2.imread(str(p)) for p in paths]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
