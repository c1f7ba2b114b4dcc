"""The conditions a figure was measured under, recorded next to it in every report.

Host: CPU model, core/thread counts, OS, Python and library versions. Jetson (detected by
``/etc/nv_tegra_release``): L4T release and the JetPack it belongs to, ``nvpmodel -q`` power mode,
whether ``jetson_clocks`` pinned the clocks, TensorRT and CUDA versions. Horizon X3 (detected by
``/sys/devices/system/bpu``): BPU cores with their frequency and utilisation files. Every probe is
best-effort: a value that cannot be read is None, never guessed.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

LIBRARIES = ("numpy", "onnxruntime", "onnxruntime-gpu", "opencv-python-headless", "opencv-python", "torch",
             "onnx", "tensorrt", "pycuda", "hobot_dnn", "bpu_infer_lib", "edgereid")

# L4T release (major.minor[.patch]) -> JetPack, from NVIDIA's JetPack archive (JetPack 5 for Xavier).
L4T_TO_JETPACK = {
    "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2", "35.5.0": "5.1.3",
    "35.6.0": "5.1.4", "35.6.1": "5.1.5", "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3",
    "32.7.4": "4.6.4", "32.7.5": "4.6.5", "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2",
}

_NV_TEGRA = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)(?:,\s*GCID:\s*(\d+))?"
                       r"(?:,\s*BOARD:\s*([\w-]+))?", re.IGNORECASE)


def _run(cmd: List[str], timeout: float = 5.0) -> str | None:
    """stdout of ``cmd`` or None when it is absent or fails (conditions are best-effort)."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def cpu_model() -> str | None:
    """``model name`` from /proc/cpuinfo; on ARM boards the device-tree model or ``Hardware``."""
    info = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Processor"):
        m = re.search(rf"^{key}\s*:\s*(.+)$", info, re.MULTILINE)
        if m:
            return m.group(1).strip()
    return _read("/proc/device-tree/model") or platform.processor() or None


# x86 INT8 dot-product levels, best first. Without VNNI, ONNX Runtime's u8s8 kernels multiply
# with vpmaddubsw, whose int16 pair sums saturate (ORT quantization guide, "reduce_range").
X86_ISAS = ("avx512_vnni", "avx_vnni", "avx2")
VNNI_ISAS = ("avx512_vnni", "avx_vnni")
CPU_ISAS = (*X86_ISAS, "asimddp", "neon")  # ARM: asimddp = the Armv8.2 dot-product extension


def parse_cpu_isa(cpuinfo: str, machine: str = "") -> Dict[str, Any]:
    """The INT8-relevant ISA of a CPU from /proc/cpuinfo's ``flags`` (x86) or ``Features`` (ARM).

    Returns:
        ``{"isa": "avx512_vnni" | "avx_vnni" | "avx2" | "asimddp" | "neon" | None, "flags": [...],
        "u8s8_saturates": bool | None}``; the flags list holds only the INT8-relevant ones found.
    """
    m = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
    found = set(m.group(1).split()) if m else set()
    flags = [f for f in (*X86_ISAS, "asimd", "asimddp") if f in found]
    arm = "asimd" in found or machine.lower() in ("aarch64", "arm64")
    isa = next((f for f in X86_ISAS if f in found), None)
    if isa is None and arm:
        isa = "asimddp" if "asimddp" in found else "neon"
    saturates = None if isa is None else (isa == "avx2")
    return {"isa": isa, "flags": flags, "u8s8_saturates": saturates}


def cpu_isa() -> Dict[str, Any]:
    """:func:`parse_cpu_isa` of this host (None fields when /proc/cpuinfo cannot be read)."""
    return parse_cpu_isa(_read("/proc/cpuinfo") or "", platform.machine())


def library_versions() -> Dict[str, str]:
    """Installed versions of the packages that shape the figures (metadata only, nothing imported)."""
    from importlib import metadata

    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def parse_nv_tegra_release(text: str) -> Dict[str, Any] | None:
    """``# R35 (release), REVISION: 3.1, GCID: ..., BOARD: t186ref`` -> L4T 35.3.1 and its JetPack."""
    m = _NV_TEGRA.search(text)
    if not m:
        return None
    l4t = f"{m.group(1)}.{m.group(2)}"
    if l4t.count(".") == 1:
        l4t += ".0"
    return {"l4t": l4t, "jetpack": L4T_TO_JETPACK.get(l4t), "gcid": m.group(3), "board": m.group(4)}


def parse_nvpmodel(text: str) -> Dict[str, Any] | None:
    """``nvpmodel -q`` output (``NV Power Mode: MODE_30W_ALL`` then the mode id) -> name and id."""
    m = re.search(r"NV Power Mode:\s*(\S+)", text)
    if not m:
        return None
    ids = re.findall(r"^\s*(\d+)\s*$", text, re.MULTILINE)
    return {"name": m.group(1), "id": int(ids[-1]) if ids else None}


def jetson_clocks_state() -> Dict[str, Any]:
    """Whether jetson_clocks pinned the clocks.

    ``jetson_clocks --show`` needs root; without it we infer from cpufreq: jetson_clocks sets every
    online core's scaling_min_freq to its maximum.
    """
    shown = _run(["jetson_clocks", "--show"])
    cpus = sorted(Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq"))
    pinned = []
    for c in cpus:
        lo, hi = _read(c / "scaling_min_freq"), _read(c / "cpuinfo_max_freq")
        if lo and hi:
            pinned.append(lo == hi)
    inferred = (all(pinned) if pinned else None)
    return {"show_output": shown.strip() if shown else None, "cpu_min_equals_max": inferred,
            "on": inferred, "how": "cpufreq scaling_min_freq == cpuinfo_max_freq on every core"}


def cuda_version() -> str | None:
    for path in ("/usr/local/cuda/version.json", "/usr/local/cuda/version.txt"):
        text = _read(path)
        if not text:
            continue
        if path.endswith(".json"):
            try:
                return json.loads(text)["cuda"]["version"]
            except (ValueError, KeyError, TypeError):
                continue
        m = re.search(r"(\d+\.\d+(?:\.\d+)?)", text)
        if m:
            return m.group(1)
    out = _run(["nvcc", "--version"])
    m = re.search(r"release (\d+\.\d+)", out or "")
    return m.group(1) if m else None


def jetson_conditions() -> Dict[str, Any] | None:
    """Jetson power/clock state and software stack; None when this is not a Jetson."""
    release = _read("/etc/nv_tegra_release")
    if release is None:
        return None
    nvp = _run(["nvpmodel", "-q"])
    versions = library_versions()
    return {
        "model": _read("/proc/device-tree/model"),
        "l4t": parse_nv_tegra_release(release),
        "nv_tegra_release": release.splitlines()[0] if release else None,
        "nvpmodel": parse_nvpmodel(nvp) if nvp else None,
        "jetson_clocks": jetson_clocks_state(),
        "tensorrt": versions.get("tensorrt") or _dpkg_version("tensorrt"),
        "cuda": cuda_version(),
    }


def _dpkg_version(package: str) -> str | None:
    out = _run(["dpkg-query", "-W", "-f=${Version}", package])
    return out.strip() or None if out else None


def x3_conditions() -> Dict[str, Any] | None:
    """Horizon X3 BPU cores (frequency, utilisation, users); None when there is no BPU sysfs.

    Read after the timed loop, ``ratio`` and ``users`` show which core ran the model. Nodes as in
    the RDK "BPU driver sysfs" documentation (/sys/devices/system/bpu/bpu*/).
    """
    root = Path("/sys/devices/system/bpu")
    if not root.is_dir():
        return None
    cores = {}
    for core in sorted(root.glob("bpu[0-9]*")):
        freq = sorted(core.glob("devfreq/devfreq*/cur_freq"))
        cores[core.name] = {
            "ratio_pct": _read(core / "ratio"),  # the driver's recent utilisation of this core
            "power_enable": _read(core / "power_enable"),
            "power_level": _read(core / "power_level"),
            "cur_freq_hz": _read(freq[0]) if freq else None,
            "users": _read(core / "users"),
        }
    return {"model": _read("/proc/device-tree/model"), "bpu_cores": cores,
            "som": _read("/sys/class/socinfo/som_name")}


def collect_conditions() -> Dict[str, Any]:
    """Everything above in one JSON-ready dict (``jetson`` / ``x3`` are None elsewhere)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = None
    from edgereid.calibration.fakequant import integer_kernel_config

    isa = cpu_isa()
    return {
        "hostname": platform.node(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "cpu_model": cpu_model(),
        "cpu_isa": isa,
        # what the ORT embedder adds for INT8 models on this CPU (exact u8s8 products where they saturate)
        "ort_int8_session_config": integer_kernel_config(isa),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": affinity,
        "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                  "MKL_NUM_THREADS") if k in os.environ},
        "libraries": library_versions(),
        "jetson": jetson_conditions(),
        "x3": x3_conditions(),
    }
