"""Lazy imports of optional heavy packages with an install hint.

Importing any edgereid module needs only numpy (torch, onnxruntime, tensorrt, hobot_dnn are
imported inside the functions that need them). ``require("onnxruntime")`` returns the module or
raises :class:`MissingDependencyError` naming the package and how to get it; it never installs
anything and never returns a dummy.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from edgereid.errors import MissingDependencyError

# module name -> how to get it
INSTALL_HINTS = {
    "torch": "pip install 'edgereid[export]' (host side only; the car needs no PyTorch)",
    "torchvision": "pip install torchvision",
    "onnx": "pip install 'edgereid[export]'",
    "onnxslim": "pip install 'edgereid[export]'",
    "onnxruntime": "pip install onnxruntime (on a Jetson: NVIDIA's onnxruntime-gpu wheel for JetPack)",
    "cv2": "pip install 'opencv-python-headless<5' (on a Jetson use JetPack's OpenCV)",
    "tensorrt": "JetPack 5 installs TensorRT's bindings for the system Python 3.8 only; run from a venv made "
                "with python3.8 -m venv --system-site-packages: `bash tools/setup_car.sh jetson` (docs/car-setup.md)",
    "pycuda": "pip install pycuda in that venv; it builds from source against JetPack's CUDA "
              "(PATH=/usr/local/cuda/bin:$PATH, python3-dev): `bash tools/setup_car.sh jetson` (docs/car-setup.md)",
    "hobot_dnn": "hobot_dnn ships with the RDK X3 Ubuntu 20.04 image for its system Python 3.8; run from a venv "
                 "made with --system-site-packages: `bash tools/setup_car.sh x3` (docs/car-setup.md)",
    "bpu_infer_lib": "pip install bpu_infer_lib_x3 on the X3 Ubuntu 22.04 image",
    "ultralytics": "pip install 'edgereid[ultralytics]' (AGPL-3.0, needs torch)",
    "matplotlib": "pip install matplotlib",
    "tqdm": "pip install tqdm",
    "rclpy": "source your ROS 2 installation",
}


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise a clear :class:`MissingDependencyError`.

    Args:
        module: importable module name, e.g. ``"onnxruntime"`` or ``"tensorrt"``.
        purpose: what the caller wanted to do, for the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        hint = INSTALL_HINTS.get(top, f"pip install {top}")
        what = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"'{module}' is needed{what} but cannot be imported on this machine ({exc}). "
            f"How to fix: {hint}."
        ) from exc


def available(module: str) -> bool:
    """True when ``module`` imports (used to pick a backend, never to fall back silently)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
