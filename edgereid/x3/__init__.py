"""Horizon Sunrise X3 (BPU, march bernoulli2): host-side export and board-side runners.

Host: :func:`edgereid.x3.export.add_x3_files` (X3 ONNX, hb_mapper YAML, calibration files,
build_x3.sh, BPU placement report, simulated INT8 accuracy). Board: ``edgereid.x3.runner``
(hobot_dnn / bpu_infer_lib embedders) and ``edgereid.x3.detector`` (BPU YOLO person detector).
Importing this package needs only numpy.
"""

from __future__ import annotations

__all__ = ["config", "detector", "export", "graph", "nv12", "ops", "placement", "rewrites", "runner", "simulate"]
