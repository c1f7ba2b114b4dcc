"""Car half: sources, detector, embedder backends, tracker, target lock, outputs.

Needs numpy, OpenCV and onnxruntime only (never torch) and runs on Python 3.8.
"""

from __future__ import annotations
