"""Memory figures of the benchmarking process: peak and current RSS, and GPU memory where readable."""

from __future__ import annotations

import shutil
import subprocess
import sys
from typing import Any, Dict


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process so far, MiB (``getrusage``; KiB on Linux, bytes on macOS)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def current_rss_mb() -> float | None:
    """Current resident set size, MiB, from /proc/self/status (Linux; None elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def gpu_memory_mb(pid: int | None = None) -> Dict[str, Any] | None:
    """GPU memory used by ``pid`` (default: this process) from ``nvidia-smi``, MiB.

    Discrete NVIDIA GPUs only: a Jetson shares RAM between CPU and GPU and has no nvidia-smi, so
    there the tegrastats ``RAM`` samples are the figure to read.
    """
    import os

    if shutil.which("nvidia-smi") is None:
        return None
    pid = os.getpid() if pid is None else pid
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    used = 0.0
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid):
            try:
                used += float(parts[1])
            except ValueError:
                continue
    return {"process_used_mb": used, "source": "nvidia-smi --query-compute-apps"}
