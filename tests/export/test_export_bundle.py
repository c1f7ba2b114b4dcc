"""Every bundle file for --target xavier --int8, from deterministic RGA-SC and RRID, on PKU crops."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from edgereid.bundle import Bundle
from edgereid.calibration.trt_cache import parse_cache_text

pytestmark = pytest.mark.assets

ROLES = ("onnx", "onnx_int8_qdq", "calib_cache", "trtexec_script", "dla_report", "sensitivity_report",
         "accuracy_report")


@pytest.fixture(scope="module", params=["rga_sc", "rrid"])
def xavier_bundle(request, tmp_path_factory, pku_dir):
    from edgereid.export import export_bundle

    out = tmp_path_factory.mktemp(request.param) / "bundle"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bundle = export_bundle(
            out, arch=request.param, target="xavier", precision="int8", calib_data=str(pku_dir),
            calib_size=8, holdout=0.05, holdout_max=4, calib_method="minmax", progress=False,
        )
    return request.param, bundle


def _sess(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_every_role_present(xavier_bundle):
    arch, b = xavier_bundle
    assert set(ROLES) <= set(b.manifest.files)
    for role in ROLES:
        assert b.path(role).is_file() and b.path(role).stat().st_size > 0
    m = b.manifest
    assert (m.target, m.precision, m.arch) == ("xavier", "int8", arch)
    assert m.extra["trt_version"] == "8.5.2" and m.source["trained"] is False
    assert m.postprocess["flip_average"] is (arch == "rrid")
    assert Bundle.load(b.root).manifest.to_dict() == m.to_dict()


def test_onnx_checked_opset_and_parity_vs_pytorch(xavier_bundle, pku_crops):
    arch, b = xavier_bundle
    model = onnx.load(str(b.path("onnx")))
    onnx.checker.check_model(model, full_check=True)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert 13 <= opset <= 17
    assert len(model.graph.output) == 1
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch
    # independent parity: PyTorch (folded RGA / RRID raw concat) vs ONNX Runtime on real crops
    import torch

    from edgereid.models import load_model, preprocess_for

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = load_model(arch, **({"folded": True} if arch.startswith("rga") else {}))
    x = preprocess_for(arch)(pku_crops[:3])
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    got = _sess(b.path("onnx")).run(None, {"images": x})[0]
    assert got.shape == ref.shape == (3, 2048 if arch.startswith("rga") else 3840)
    cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    assert cos.min() >= 0.9999
    assert b.manifest.extra["parity"]["cosine_min"] >= 0.9999


def test_qdq_model_in_tensorrt_form_and_runs(xavier_bundle, pku_crops):
    arch, b = xavier_bundle
    model = onnx.load(str(b.path("onnx_int8_qdq")))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq
    zero_points = [inits[n.input[2]] for n in qdq]
    assert all(z.dtype == np.int8 and not z.any() for z in zero_points)
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    weight_q = [n for n in qdq if n.op_type == "QuantizeLinear" and n.input[0] in inits]
    assert weight_q and all(inits[n.input[0]].dtype == np.float32 for n in weight_q)  # float behind Q/DQ
    users = {i: node for node in model.graph.node for i in node.input}
    for n in weight_q:
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        dequant = users[n.output[0]]
        op = users[dequant.output[0]]
        transb = next((a.i for a in op.attribute if a.name == "transB"), 0)
        expected = {"Conv": 0, "Gemm": 0 if transb else 1, "MatMul": 1}[op.op_type]
        assert axis == expected, (n.input[0], op.op_type)
        assert inits[n.input[1]].shape == (inits[n.input[0]].shape[axis],)  # per-channel scales
    deq_out = {n.output[0] for n in qdq if n.op_type == "DequantizeLinear"}
    assert conv_weights <= deq_out  # every Conv weight comes through a DequantizeLinear
    assert not [k for k, v in inits.items() if v.dtype == np.int32]  # biases stay float
    x = __import__("edgereid.models", fromlist=["x"]).preprocess_for(arch)(pku_crops[:2])
    a = _sess(b.path("onnx")).run(None, {"images": x})[0]
    q = _sess(b.path("onnx_int8_qdq")).run(None, {"images": x})[0]
    cos = (a * q).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(q, axis=1)
    assert cos.min() > 0.95


def test_cache_parses_back_and_names_graph_tensors(xavier_bundle):
    _, b = xavier_bundle
    header, scales = parse_cache_text(b.path("calib_cache").read_text())
    assert header == "TRT-8502-EntropyCalibration2"
    model = onnx.load(str(b.path("onnx")))
    graph_tensors = {i.name for i in model.graph.input} | {o for n in model.graph.node for o in n.output}
    assert scales and set(scales) <= graph_tensors
    assert "images" in scales and model.graph.output[0].name in scales
    assert all(np.isfinite(s) and s > 0 for s in scales.values())
    # the same activation scales the QDQ model carries (symmetric int8: amax / 127)
    qdq = onnx.load(str(b.path("onnx_int8_qdq")))
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    compared = 0
    for n in qdq.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] in scales:
            assert float(inits[n.input[1]]) == pytest.approx(scales[n.input[0]], rel=1e-5)
            compared += 1
    assert compared > 10
    assert b.manifest.extra["int8"]["cache_entries"] == len(scales)


def test_build_script_lines_exact(xavier_bundle):
    _, b = xavier_bundle
    h, w = b.preprocess.height, b.preprocess.width
    text = b.path("trtexec_script").read_text()
    shapes = (f"--minShapes=images:1x3x{h}x{w} --optShapes=images:4x3x{h}x{w} "
              f"--maxShapes=images:8x3x{h}x{w}")
    def tail(stem):
        return ("--memPoolSize=workspace:1024 --timingCacheFile=timing.cache --profilingVerbosity=detailed "
                f"--exportLayerInfo={stem}.layers.json --exportProfile={stem}.profile.json")

    assert (f'  "$TRTEXEC" --onnx=model.int8.qdq.onnx --saveEngine=model.int8qdq.engine --fp16 --int8 '
            f"{shapes} {tail('model.int8qdq')}\n") in text
    assert (f'  "$TRTEXEC" --onnx=model.onnx --saveEngine=model.int8.engine --fp16 --int8 '
            f"--calib=calib.cache {shapes} {tail('model.int8')}\n") in text
    assert (f'  "$TRTEXEC" --onnx=model.onnx --saveEngine=model.fp16.engine --fp16 {shapes} '
            f"{tail('model.fp16')}\n") in text
    assert "  check_cache calib.cache\n" in text  # before the int8-cache line only
    assert b.path("trtexec_script").stat().st_mode & 0o111


def test_reports(xavier_bundle):
    _, b = xavier_bundle
    acc = json.loads(b.path("accuracy_report.json" and "accuracy_report").read_text())
    assert acc["crops"] == len(acc["cosine"]["per_crop"]) > 0
    assert "UNTRAINED" in acc["note"]
    sens = json.loads(b.path("sensitivity_report").read_text())
    assert sens["layers"] and {d["op_type"] for d in sens["layers"]} <= {"Conv", "Gemm", "MatMul"}
    dla = json.loads(b.path("dla_report").read_text())
    assert dla["dynamic_batch"] and not dla["usable"]
    assert dla["dla_layers"] + dla["gpu_layers"] == len(dla["layers"]) and dla["gpu_dla_transitions"] > 0
