"""The real trained OSNet (--onnx): INT8 accuracy on PKU-Reid, and the cpu target through the CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from edgereid.bundle import Bundle
from edgereid.calibration.crops import load_calibration_set
from edgereid.cli.export import main
from edgereid.errors import BackendError
from edgereid.evaluation.metrics import rowwise_cosine
from edgereid.runtime.embedder import load_embedder

pytestmark = pytest.mark.assets


def test_osnet_xavier_int8_rank1_within_two_points(tmp_path, osnet_onnx, pku_dir):
    """Calibrate on half of the identities, score the other half (camera 1 query, camera 2 gallery)."""
    from edgereid.export import export_bundle

    b = export_bundle(tmp_path / "osnet", onnx=str(osnet_onnx), target="xavier", precision="int8",
                      calib_data=str(pku_dir), calib_size=256, holdout=0.5, holdout_max=10_000, progress=False)
    acc = b.manifest.extra["accuracy"]
    calib = b.manifest.extra["int8"]["calibration"]
    assert calib["calib"] == 256 and calib["labelled"]
    assert acc["fp32"]["queries"] == 248  # 31 held-out identities x 8 camera-1 views
    assert acc["fp32"]["rank1"] > 0.6  # the trained model really tells people apart
    assert abs(acc["int8"]["rank1"] - acc["fp32"]["rank1"]) <= 0.02
    assert acc["cosine"]["mean"] > 0.98
    src = onnx.load(str(osnet_onnx))
    assert src.opset_import[0].version == 12
    out = onnx.load(str(b.path("onnx")))
    assert next(o.version for o in out.opset_import if o.domain in ("", "ai.onnx")) == 13
    assert b.manifest.preprocess.to_dict()["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert (b.preprocess.height, b.preprocess.width, b.preprocess.color) == (256, 128, "rgb")
    assert b.manifest.extra["parity"]["reference"] == "original onnx"
    assert b.manifest.extra["parity"]["cosine_min"] >= 0.9999
    # the manifest's figure is the exact fake-quant figure of its QDQ model: recompute it for a few
    # held-out crops with every ORT optimization off (no fusion at all: plain Q, DQ, float Conv)
    per_crop = json.loads(b.path("accuracy_report").read_text())["cosine"]["per_crop"]
    held = load_calibration_set(str(pku_dir), 256, 0, 0.5, False, None, 10_000).holdout[:12]
    x = b.preprocess(held)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    runs = [ort.InferenceSession(str(b.path(r)), opts, providers=["CPUExecutionProvider"])
            for r in ("onnx", "onnx_int8_qdq")]
    f32, q8 = (np.concatenate([s.run(None, {"images": x[i:i + 4]})[0] for i in range(0, 12, 4)]) for s in runs)
    np.testing.assert_allclose(rowwise_cosine(f32, q8), per_crop[:12], atol=0.01)
    assert abs(acc["cosine"]["mean"] - float(np.mean(per_crop))) < 1e-6


def test_osnet_cpu_int8_through_cli(tmp_path, osnet_onnx, pku_dir, pku_crops, capsys):
    out = tmp_path / "cpu"
    code = main(["--onnx", str(osnet_onnx), "--target", "cpu", "--int8", "--calib-data", str(pku_dir),
                 "--calib-size", "16", "--holdout-max", "16", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out
    b = Bundle.load(out)
    assert b.manifest.precision == "int8" and b.has("onnx_int8_cpu") and not b.has("calib_cache")
    model = onnx.load(str(b.path("onnx_int8_cpu")))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    act_zp = {inits[n.input[2]].dtype.name for n in model.graph.node
              if n.op_type == "QuantizeLinear" and n.input[0] not in inits}
    assert act_zp == {"uint8"}  # u8s8: the fast CPU flavour
    # the simulated figure (fake-quantization, pinned session options): the same on any host
    with load_embedder(b, "ort") as fp32, load_embedder(b, "ort-int8-sim") as int8:
        a, q = fp32.embed(pku_crops), int8.embed(pku_crops)
    assert a.shape == q.shape == (len(pku_crops), 512)
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    assert float((a * q).sum(1).min()) > 0.95
    report = json.loads(b.path("accuracy_report").read_text())
    assert report["crops"] == 16 and report["computed_as"].startswith("simulated INT8")
    host = report["ort_integer_kernels"]  # what ORT's integer kernels give on this host, labelled
    assert host["computed_as"].startswith("ONNX Runtime integer kernels") and host["crops"] == 16
    with pytest.raises(BackendError, match="not a PyTorch architecture"):
        load_embedder(b, "torch")


def test_torch_backend_matches_onnx(tmp_path, pku_crops):
    """load_embedder(bundle, "torch") rebuilds the same (untrained, folded) RGA-SC as model.onnx."""
    from edgereid.export import export_bundle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = export_bundle(tmp_path / "rga", arch="rga_sc", target="cpu", batch=2, progress=False)
    assert b.manifest.inputs[0]["shape"] == [2, 3, 256, 128]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untrained weights, on purpose
        torch_embedder = load_embedder(b, "torch")
    with torch_embedder as t, load_embedder(b, "ort") as o:
        et, eo = t.embed(pku_crops[:3]), o.embed(pku_crops[:3])
    assert float((et * eo).sum(1).min()) >= 0.9999
    assert b.manifest.extra["parity"]["inputs"].startswith("synthetic")
