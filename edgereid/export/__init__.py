"""Host half: torch / foreign ONNX -> a bundle for cpu, xavier or x3 (``reid-export``).

Importing this package needs only numpy; torch, onnx and onnxruntime load when used.
"""

from __future__ import annotations

from edgereid.export.api import export_bundle, resolve_profile
from edgereid.export.targets import TARGETS

__all__ = ["TARGETS", "export_bundle", "resolve_profile"]
