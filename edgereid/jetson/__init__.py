"""Jetson side: TensorRT engine plans (host-tested), the 8.5 Python API builder, DLA report, runner.

Only ``engine``, ``calibrator`` and ``runner`` touch tensorrt / pycuda, inside their functions.
"""

from __future__ import annotations
