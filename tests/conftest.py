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


def write_onnx_bundle(directory: Path, models: dict, schema_version: int = 1, files: dict | None = None,
                      spec=None) -> Path:
    """A cpu/fp32 bundle around existing ONNX files (linked, never copied), as reid-export would write.

    Args:
        directory: the bundle folder to create.
        models: role -> ONNX path, e.g. {"onnx": osnet_onnx}; each is linked as ``<role>.onnx``.
        schema_version / files: override the manifest's, to make broken bundles.
        spec: PreprocessSpec (default 256x128 RGB ImageNet: the shared OSNet's).
    """
    from edgereid.bundle import Manifest, write_manifest
    from edgereid.preprocess import PreprocessSpec

    directory.mkdir(parents=True, exist_ok=True)
    linked = {}
    for role, path in models.items():
        os.symlink(path, directory / f"{role}.onnx")
        linked[role] = f"{role}.onnx"
    spec = spec or PreprocessSpec(256, 128)
    write_manifest(directory, Manifest(
        arch="onnx", target="cpu", precision="fp32", preprocess=spec, files=linked if files is None else files,
        inputs=[{"name": "images", "shape": ["N", 3, spec.height, spec.width], "dtype": "float32"}],
        outputs=[{"name": "output", "shape": ["N", 512], "dtype": "float32"}], embedding_dim=512,
        schema_version=schema_version))
    return directory


@pytest.fixture(scope="session")
def onnx_bundle():
    """:func:`write_onnx_bundle`, for tests in any folder."""
    return write_onnx_bundle
