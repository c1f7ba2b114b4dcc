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


def test_osnet_xavier_int8_default_settings_within_one_point(tmp_path, osnet_onnx, pku_dir):
    """Default settings (512 calibration crops, a quarter of the identities held out, --max-drop 1.0):
    the simulated rank-1 drop on identities never used for calibration is at most 1 point, with at
    least 80 % of the MACs in INT8. (Seed 1 and full INT8: benchmarks/results/ort_int8.md.)"""
    from edgereid.export import export_bundle

    b = export_bundle(tmp_path / "osnet", onnx=str(osnet_onnx), target="xavier", precision="int8",
                      calib_data=str(pku_dir), progress=False)
    acc, int8 = b.manifest.extra["accuracy"], b.manifest.extra["int8"]
    calib = int8["calibration"]
    assert calib["calib"] == 512 and calib["labelled"] and calib["holdout"] == 256
    assert acc["fp32"]["queries"] == 256  # 16 held-out identities x 8 views x 2 cameras, each camera the query in turn
    assert acc["fp32"]["rank1"] > 0.6  # the trained model really tells people apart
    assert acc["fp32"]["rank1"] - acc["int8"]["rank1"] <= 0.01 + 1e-9
    assert acc["cosine"]["mean"] >= 0.998  # the TensorRT form's default budget
    mp = int8["mixed_precision"]
    assert mp["met"] and int8["int8_mac_share"] >= 0.8
    assert mp["trials"][0]["k"] == 0 and mp["trials"][-1]["k"] <= len(mp["float_layers"]) * 2
    qdq = onnx.load(str(b.path("onnx_int8_qdq")))
    producers = {o: n for n in qdq.graph.node for o in n.output}
    for name in mp["float_layers"]:  # no Q/DQ on a float layer's weights: TensorRT runs it in FP16
        node = next(n for n in qdq.graph.node if n.name == name)
        assert node.input[1] not in producers or producers[node.input[1]].op_type != "DequantizeLinear"
    bc = int8["bias_correction"]
    assert bc["layers"] >= 100 and bc["levels"] > 10  # OSNet x0.25: 128 biased Conv/Gemm, corrected level by level
    fp32_model = onnx.load(str(b.path("onnx")))
    fp32_inits = {i.name: numpy_helper.to_array(i) for i in fp32_model.graph.initializer}
    qdq_inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    fp32_bias = {n.name: fp32_inits[n.input[2]] for n in fp32_model.graph.node
                 if n.op_type in ("Conv", "Gemm") and len(n.input) > 2}
    # ORT gives every node its own bias copy in the QDQ model (the gates' shared biases too)
    moved = [n.name for n in qdq.graph.node if n.name in fp32_bias and len(n.input) > 2
             and not np.array_equal(qdq_inits[n.input[2]], fp32_bias[n.name])]
    assert len(moved) == bc["layers"]  # the shipped QDQ model carries the corrected biases
    consumers = {t: n.op_type for n in qdq.graph.node for t in n.input}
    fed = {consumers[n.output[0]] for n in qdq.graph.node if n.op_type == "DequantizeLinear"}
    # TensorRT's placement: Q/DQ on weighted ops' inputs; the one exception is a tensor that also
    # feeds a residual Add (ORT's DedicatedQDQPair gives that Add a pair of its own: 3 in OSNet)
    assert fed <= {"Conv", "Gemm", "MatMul", "Add"}
    adds = [n for n in qdq.graph.node if n.op_type == "DequantizeLinear" and consumers[n.output[0]] == "Add"]
    assert len(adds) <= 3
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
    held = load_calibration_set(str(pku_dir), 512, 0, 0.25, False, None, 256).holdout[:12]
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
                 "--calib-size", "16", "--holdout-max", "16", "--out", str(out), "--no-progress",
                 "--cpu-isa", "avx2", "--max-drop", "off"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "wrote" in printed.out and "95 % interval of the change" in printed.out
    b = Bundle.load(out)
    assert b.manifest.precision == "int8" and b.has("onnx_int8_cpu") and not b.has("calib_cache")
    acc = b.manifest.extra["accuracy"]
    lo, hi = acc["delta_rank1_ci95_points"]
    assert lo <= acc["delta_rank1_points"] <= hi
    model = onnx.load(str(b.path("onnx_int8_cpu")))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    act_zp = {inits[n.input[2]].dtype.name for n in model.graph.node
              if n.op_type == "QuantizeLinear" and n.input[0] not in inits}
    assert act_zp == {"uint8"}  # u8s8: the fast CPU flavour
    int8 = b.manifest.extra["int8"]
    assert int8["cpu_isa"] == "avx2" and int8["reduce_range"] is True and "mixed_precision" not in int8
    assert int8["int8_mac_share"] == 1.0
    assert int8["bias_correction"]["layers"] >= 60 and int8["bias_correction"]["applies_to"] == "model.int8.cpu.onnx"
    assert any(a.dtype == np.int32 for a in inits.values())  # corrected, then quantized: int32 biases (QLinearConv)
    w = next(inits[n.input[0]] for n in model.graph.node if n.op_type == "DequantizeLinear"
             and n.input[0] in inits and inits[n.input[0]].dtype == np.int8)
    assert np.abs(w.astype(int)).max() <= 64  # 7-bit weights (ORT: [-64, 64]): AVX2 without VNNI does not saturate
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
