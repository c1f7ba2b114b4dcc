"""reid-bench check: exit 0 on a bundle as exported, 1 once its model changed - through onnxruntime here,
and through stand-in TensorRT and hobot_dnn runners (tests/standins.py) that run the bundle's ONNX."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from standins import install_hobot_dnn, install_trt

from edgereid.bundle import Bundle, write_manifest
from edgereid.check.golden import read_golden, rowwise_cosine
from edgereid.cli.bench import main

pytestmark = pytest.mark.assets


@pytest.fixture(scope="module")
def exported(tmp_path_factory, osnet_onnx, pku_dir) -> Path:
    """The shared OSNet exported for the CPU in INT8 (8 calibration crops: fast, not accurate)."""
    from edgereid.export import export_bundle

    out = tmp_path_factory.mktemp("check") / "osnet-int8"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_bundle(out, onnx=str(osnet_onnx), target="cpu", precision="int8", calib_data=str(pku_dir),
                      calib_size=8, holdout=0.05, holdout_max=4, calib_method="minmax", progress=False)
    return out


@pytest.fixture
def bundle(exported, tmp_path) -> Path:
    return Path(shutil.copytree(exported, tmp_path / "b"))


def _break(onnx_path: Path) -> None:
    """Shuffle the values of the model's three largest weight tensors: same file shape, another function."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    rng = np.random.default_rng(0)
    for init in sorted(model.graph.initializer, key=lambda t: -int(np.prod(t.dims)))[:3]:
        arr = numpy_helper.to_array(init)
        init.CopyFrom(numpy_helper.from_array(rng.permutation(arr.reshape(-1)).reshape(arr.shape), init.name))
    onnx.save(model, str(onnx_path))


def _check(capsys, bundle, backend, tmp_path):
    out = tmp_path / f"check-{backend}.json"
    code = main(["check", "--bundle", str(bundle), "--backend", backend, "--out", str(out)])
    text = capsys.readouterr().out
    return code, text, json.loads(out.read_text())


def test_golden_written_by_export(exported):
    b = Bundle.load(exported)
    g = read_golden(b)
    assert g.crops.shape == (8, 256, 128, 3) and g.crops.dtype == np.uint8  # 4 hold-out + 4 calibration crops
    assert g.fp32.shape == (8, 512) and np.allclose(np.linalg.norm(g.fp32, axis=1), 1.0, atol=1e-5)
    info = b.manifest.extra["golden"]
    assert info["inputs"].startswith("person crops") and info["int8_sim"]["role"] == "onnx_int8_cpu"
    sim = rowwise_cosine(g.int8_sim, g.fp32)
    assert info["int8_sim"]["cosine_min"] == pytest.approx(sim.min(), abs=1e-6)
    assert info["tolerance"]["int8"] == pytest.approx(round(sim.min() - 0.03, 4))
    # the reference is model.onnx through onnxruntime, computed here independently of the check code
    import onnxruntime as ort

    sess = ort.InferenceSession(str(b.path("onnx")), providers=["CPUExecutionProvider"])
    x = b.preprocess(list(g.crops))
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert rowwise_cosine(ref, g.fp32).min() > 0.99999


@pytest.mark.parametrize("backend, role", [("ort", "onnx"), ("ort-int8", "onnx_int8_cpu")])
def test_check_passes_as_exported_and_fails_once_changed(bundle, tmp_path, capsys, backend, role):
    code, text, rep = _check(capsys, bundle, backend, tmp_path)
    assert code == 0 and rep["pass"] is True and "PASS" in text
    assert rep["precision"] == ("fp32" if backend == "ort" else "int8")
    if backend == "ort":
        assert rep["cosine_min"] > 0.9999
    else:  # ort-int8 is the simulation itself
        assert min(rep["cosine_vs_int8_sim"]) > 0.9999
    _break(Bundle.load(bundle).path(role))
    code, text, rep = _check(capsys, bundle, backend, tmp_path)
    assert code == 1 and rep["pass"] is False and "FAIL" in text
    assert rep["cosine_min"] < rep["tolerance_cosine_min"]


def test_check_through_stand_in_tensorrt(bundle, tmp_path, capsys, monkeypatch):
    from edgereid.jetson.engine import build_bundle_engine

    b = Bundle.load(bundle)
    b.manifest.extra["trt"] = {"version": "8.5.2", "profile": {"min": 1, "opt": 4, "max": 8},
                               "engines": {"fp16": "model.fp16.engine"}, "default_mode": "fp16"}
    write_manifest(bundle, b.manifest)
    install_trt(monkeypatch)
    engine = build_bundle_engine(str(bundle), "fp16")  # the stand-in "engine" is model.onnx's bytes
    (bundle / "model.fp16.layers.json").write_text(json.dumps({"Layers": [
        {"Name": "/conv1/Conv + /relu", "LayerType": "CaskConvolution",
         "Inputs": [{"Name": "images", "Dimensions": [1, 3, 256, 128], "Format/Datatype": "Row major linear FP16 "
                     "format"}], "Outputs": []}], "Bindings": ["images", "output"]}))
    code, text, rep = _check(capsys, bundle, "trt", tmp_path)
    assert code == 0 and rep["precision"] == "fp16" and rep["tolerance_cosine_min"] == 0.995
    assert rep["runner"].startswith("tensorrt:") and rep["engine"]["precision_counts"] == {"FP16": 1}
    _break(engine)
    code, _, rep = _check(capsys, bundle, "trt", tmp_path)
    assert code == 1 and rep["cosine_min"] < 0.995


def test_check_through_stand_in_hobot_dnn(bundle, tmp_path, capsys, monkeypatch):
    import cv2

    b = Bundle.load(bundle)
    shutil.copy(b.path("onnx"), bundle / "model.bin")  # the stand-in ".bin"
    b.manifest.files["x3_bin"] = "model.bin"
    b.manifest.extra["x3"] = {"input_type_rt": "nv12", "march": "bernoulli2"}
    write_manifest(bundle, b.manifest)
    spec = b.preprocess

    def compiled_preprocessing(nv12):  # what hb_mapper compiles into the .bin: NV12 -> BGR -> mean/std
        return spec([cv2.cvtColor(np.asarray(nv12, np.uint8), cv2.COLOR_YUV2BGR_NV12)])

    install_hobot_dnn(monkeypatch, compiled_preprocessing)
    code, text, rep = _check(capsys, bundle, "bpu", tmp_path)
    assert code == 0, text
    assert rep["precision"] == "int8" and rep["runner"].startswith("hobot_dnn:")
    assert 0.97 < rep["cosine_min"] < 1.0  # FP32 model, but NV12 halves the chroma resolution
    assert rep["engine"]["march"] == "bernoulli2"
    _break(bundle / "model.bin")
    code, _, rep = _check(capsys, bundle, "bpu", tmp_path)
    assert code == 1


def test_check_bad_input_exit_2(bundle, tmp_path, capsys, onnx_bundle, osnet_onnx):
    old = onnx_bundle(tmp_path / "old", {"onnx": osnet_onnx})  # no golden role
    assert main(["check", "--bundle", str(old), "--backend", "ort"]) == 2
    assert "no 'golden' role" in capsys.readouterr().err
    assert main(["check", "--bundle", str(bundle), "--backend", "nosuch"]) == 2
    assert "unknown embedder backend" in capsys.readouterr().err
    assert main(["check", "--bundle", str(bundle), "--backend", "trt"]) == 2  # no tensorrt here
    err = capsys.readouterr().err
    assert "no TensorRT mode" in err or "tensorrt" in err
