"""python -m edgereid.doctor: names what a Jetson / X3 lacks and how to get it; stand-ins play the device."""

from __future__ import annotations

import sys
import types

import pytest
from standins import install_hobot_dnn, install_trt

from edgereid.doctor import diagnose, main, render


def test_this_host_is_not_a_jetson(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # None in sys.modules: import fails, as on a bare host
    monkeypatch.setitem(sys.modules, "pycuda", None)
    assert main(["--device", "jetson"]) == 1
    out = capsys.readouterr().out
    assert "tensorrt" in out and "MISSING" in out and "--system-site-packages" in out
    assert "pycuda.driver" in out and "builds from source" in out
    assert out.rstrip().endswith("NOT READY (see above)")


def test_jetson_with_stand_in_tensorrt_and_pycuda(monkeypatch):
    install_trt(monkeypatch)
    sys.modules["pycuda.driver"].Device = lambda i: types.SimpleNamespace(name=lambda: "Xavier (stand-in)")
    report = diagnose("jetson")
    rows = {r["module"]: r for r in report["rows"]}
    assert rows["tensorrt"]["ok"] and rows["tensorrt"]["version"] == "8.5.2.2"
    assert rows["pycuda.driver"]["device"] == "Xavier (stand-in)"
    assert report["ok"] is True and "OK: next, reid-bench check" in render(report)


def test_x3_needs_hobot_dnn(monkeypatch):
    monkeypatch.setitem(sys.modules, "hobot_dnn", None)
    monkeypatch.setitem(sys.modules, "hobot_dnn.pyeasy_dnn", None)
    report = diagnose("x3")
    assert report["ok"] is False
    row = next(r for r in report["rows"] if r["module"] == "hobot_dnn.pyeasy_dnn")
    assert not row["ok"] and "RDK X3" in row["hint"]
    install_hobot_dnn(monkeypatch, lambda b: b)
    assert diagnose("x3")["ok"] is True


def test_optional_packages_do_not_fail_the_verdict():
    fake = {"numpy": True, "cv2": True, "hobot_dnn.pyeasy_dnn": True, "onnxruntime": False}
    report = diagnose("x3", prober=lambda m: {"ok": fake[m], "version": "1" if fake[m] else None,
                                               "error": None if fake[m] else "ImportError: x"})
    assert report["ok"] is True and "absent (optional)" in render(report)


def test_unknown_device():
    with pytest.raises(SystemExit):
        main(["--device", "orin"])
