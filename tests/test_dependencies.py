"""Importing any edgereid module needs only numpy (STYLE rule 21/22).

Each module is imported in a fresh interpreter where torch, onnx, onnxruntime, OpenCV, TensorRT,
pycuda, hobot_dnn, ultralytics and matplotlib are blocked, as on a bare machine.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = [
    "torch", "torchvision", "onnx", "onnxruntime", "onnxslim", "cv2", "tensorrt", "pycuda",
    "hobot_dnn", "bpu_infer_lib", "ultralytics", "matplotlib", "scipy", "tqdm", "rclpy",
]  # fmt: skip

_PROBE = r"""
import importlib, importlib.abc, pkgutil, sys
BLOCKED = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked for this test: {name}")
        return None
sys.meta_path.insert(0, Block())
import edgereid
failed = []
for info in pkgutil.walk_packages(edgereid.__path__, "edgereid."):
    try:
        importlib.import_module(info.name)
    except Exception as exc:
        failed.append(f"{info.name}: {type(exc).__name__}: {exc}")
print("\n".join(failed))
"""


def test_every_module_imports_with_numpy_only():
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(HEAVY)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", "modules that need more than numpy at import:\n" + out.stdout


CAR_SIDE = ["edgereid/runtime", "edgereid/jetson", "edgereid/x3"]


@pytest.mark.parametrize("folder", CAR_SIDE)
def test_car_side_never_uses_torch(folder):
    """The car has no PyTorch: car-side code must not import it even lazily."""
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        text = path.read_text()
        if re.search(r"^\s*(import torch|from torch\b)", text, re.M):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_every_module_has_future_annotations():
    """Python 3.8 on the car accepts `X | None` annotations only when they are never evaluated."""
    missing = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "edgereid").rglob("*.py"))
        if p.read_text().strip() and "from __future__ import annotations" not in p.read_text()
    ]
    assert missing == []
