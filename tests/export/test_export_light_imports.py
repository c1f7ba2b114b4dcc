"""Importing the export/calibration/jetson modules needs only numpy (heavy packages load when used)."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "edgereid.export", "edgereid.export.api", "edgereid.export.int8", "edgereid.export.onnx_tools",
    "edgereid.export.parity", "edgereid.export.source", "edgereid.export.target_cpu",
    "edgereid.export.target_x3", "edgereid.export.target_xavier", "edgereid.export.targets",
    "edgereid.export.torch_runner", "edgereid.calibration", "edgereid.calibration.accuracy",
    "edgereid.calibration.crops", "edgereid.calibration.qdq", "edgereid.calibration.ranges",
    "edgereid.calibration.reader", "edgereid.calibration.sensitivity", "edgereid.calibration.trt_cache",
    "edgereid.jetson.calibrator", "edgereid.jetson.dla", "edgereid.jetson.engine", "edgereid.jetson.plan",
    "edgereid.jetson.runner", "edgereid.cli.export",
]

BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'onnx', 'onnxruntime', 'onnxslim', 'cv2', 'tensorrt', 'pycuda', 'tqdm'}:
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
import importlib
for m in %r:
    importlib.import_module(m)
print('ok')
"""


def test_modules_import_with_numpy_only():
    out = subprocess.run([sys.executable, "-c", BLOCK % MODULES], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
