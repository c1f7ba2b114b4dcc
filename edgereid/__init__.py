"""edgereid: person re-identification from the workstation to a follow-car's edge computer.

Host half: ``edgereid.models`` (RGA, RRID), ``edgereid.export``, ``edgereid.calibration``,
``edgereid.jetson`` (TensorRT), ``edgereid.x3`` (Horizon BPU). Car half: ``edgereid.runtime``.
They meet in the bundle (``edgereid.bundle``). Importing this package needs only numpy.
"""

from __future__ import annotations

__version__ = "0.1.0"
