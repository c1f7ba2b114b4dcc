"""``python -m edgereid.doctor --device jetson|x3|cpu``: does this car have what its backend needs?

Run by ``tools/setup_car.sh`` at the end of the set-up, and by hand whenever reid-follow says a
library is missing. Each line names a package, its version (or why it cannot be imported) and how
to get it on that device; exit 0 when every required package imports, 1 otherwise.
Car side: Python 3.8, imports each package only inside :func:`probe`.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
from typing import Any, Dict, List, Optional, Sequence

# device -> [(module, required, how to get it there)]
NEEDS: Dict[str, List[tuple]] = {
    "jetson": [
        ("numpy", True, "pip install numpy (inside the venv)"),
        ("cv2", True, "use JetPack's OpenCV: create the venv with --system-site-packages (tools/setup_car.sh)"),
        ("tensorrt", True, "JetPack installs TensorRT's bindings for the system Python 3.8 only: create the venv "
                           "with python3.8 -m venv --system-site-packages (tools/setup_car.sh jetson)"),
        ("pycuda.driver", True, "pip install pycuda inside the venv; it builds from source against JetPack's CUDA: "
                                "PATH=/usr/local/cuda/bin:$PATH and apt install python3-dev (tools/setup_car.sh)"),
        ("onnxruntime", False, "optional (--backend ort): NVIDIA's onnxruntime-gpu wheel for your JetPack"),
    ],
    "x3": [
        ("numpy", True, "pip install numpy (inside the venv)"),
        ("cv2", True, "pip install 'opencv-python-headless<5' inside the venv"),
        ("hobot_dnn.pyeasy_dnn", True, "hobot_dnn ships with the RDK X3 Ubuntu 20.04 image for its system Python "
                                       "3.8: create the venv with --system-site-packages (tools/setup_car.sh x3)"),
        ("onnxruntime", False, "optional (--backend ort): pip install onnxruntime"),
    ],
    "cpu": [
        ("numpy", True, "pip install numpy"),
        ("cv2", True, "pip install 'opencv-python-headless<5'"),
        ("onnxruntime", True, "pip install onnxruntime"),
    ],
}


def probe(module: str) -> Dict[str, Any]:
    """Import ``module``: {"ok", "version", "error"}; pycuda also initialises CUDA and names the GPU."""
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # ImportError, or a binary module failing to load (OSError, RuntimeError)
        return {"ok": False, "version": None, "error": f"{type(exc).__name__}: {exc}"}
    top = importlib.import_module(module.split(".")[0])
    info: Dict[str, Any] = {"ok": True, "version": str(getattr(top, "__version__", getattr(top, "VERSION", "?"))),
                            "error": None}
    if module == "pycuda.driver":
        try:
            mod.init()
            info["device"] = str(mod.Device(0).name())
        except Exception as exc:  # noqa: BLE001 - report whatever the driver says
            info.update(ok=False, error=f"CUDA initialisation failed: {exc}")
    return info


def diagnose(device: str, prober: Any = probe) -> Dict[str, Any]:
    """The probe of every package ``device`` needs, and the verdict."""
    if device not in NEEDS:
        raise ValueError(f"unknown device {device!r}; valid: {sorted(NEEDS)}")
    rows = []
    for module, required, hint in NEEDS[device]:
        rows.append({"module": module, "required": required, "hint": hint, **prober(module)})
    ok = all(r["ok"] for r in rows if r["required"])
    return {"device": device, "python": platform.python_version(), "executable": sys.executable, "rows": rows,
            "ok": ok}


def render(report: Dict[str, Any]) -> str:
    lines = [f"edgereid doctor ({report['device']}): Python {report['python']} at {report['executable']}"]
    for r in report["rows"]:
        mark = "ok" if r["ok"] else ("MISSING" if r["required"] else "absent (optional)")
        detail = r["version"] if r["ok"] else r["error"]
        extra = f", {r['device']}" if r.get("device") else ""
        lines.append(f"  {r['module']:<22} {mark:<18} {detail}{extra}")
        if not r["ok"]:
            lines.append(f"  {'':<22} how to fix: {r['hint']}")
    if sys.version_info[:2] != (3, 8) and report["device"] in ("jetson", "x3"):
        lines.append(f"  note: JetPack 5 and the X3 image ship their device bindings for Python 3.8; this is "
                     f"{report['python']}")
    lines.append("OK: next, reid-bench check --bundle <bundle>" if report["ok"] else "NOT READY (see above)")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgereid.doctor", description=__doc__.split("\n")[0])
    p.add_argument("--device", required=True, choices=sorted(NEEDS), help="what this car is")
    args = p.parse_args(argv)
    report = diagnose(args.device)
    print(render(report), end="")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
