"""add_x3_files on real models: the shared OSNet (PKU-Reid crops) and the folded RGA-SC.

Built once per module (the exports are the slow part); every test reads the bundle files.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.evaluation.metrics import rowwise_cosine
from edgereid.preprocess import PreprocessSpec
from edgereid.x3.export import add_x3_files
from edgereid.x3.ops import X3_RULES
from edgereid.x3.simulate import run_batch1

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
yaml = pytest.importorskip("yaml")

OSNET_SPEC = PreprocessSpec(height=256, width=128)  # RGB, /255, ImageNet mean/std (assets README)
EVAL_IDS = 24  # identities evaluated (camera 1 query, camera 2 gallery)
CALIB_CROPS = 24  # from the other identities


@pytest.fixture(scope="module")
def pku_split(pku_dir):
    import cv2

    pids = sorted(p.name for p in pku_dir.iterdir() if p.is_dir())
    hold, labels, calib = [], [], []
    for k, pid in enumerate(pids):
        for f in sorted((pku_dir / pid).glob("*.png")):
            img = cv2.imread(str(f))
            if k < EVAL_IDS:
                hold.append(img)
                labels.append((int(pid), int(f.name.split("_")[0])))
            else:
                calib.append(img)
    step = max(1, len(calib) // CALIB_CROPS)
    return hold, labels, calib[::step][:CALIB_CROPS]


@pytest.fixture(scope="module")
def osnet_bundle(osnet_onnx, pku_split, tmp_path_factory):
    hold, labels, calib = pku_split
    staging = tmp_path_factory.mktemp("x3_osnet")
    roles, figures = add_x3_files(staging, Path(osnet_onnx), OSNET_SPEC, calib, hold, labels, {})
    return staging, roles, figures


@pytest.mark.assets
def test_roles_and_files(osnet_bundle):
    staging, roles, figures = osnet_bundle
    assert set(roles) == {"x3_onnx", "x3_config", "x3_calib_dir", "x3_build_script", "x3_report"}
    for rel in roles.values():
        assert (staging / rel).exists() and not Path(rel).is_absolute()
    assert (staging / "bpu_report.txt").read_text().startswith("X3 BPU placement")
    assert (staging / roles["x3_build_script"]).stat().st_mode & 0o111


@pytest.mark.assets
def test_x3_onnx_contract(osnet_bundle, osnet_onnx, pku_split):
    staging, roles, _ = osnet_bundle
    model = onnx.load(str(staging / roles["x3_onnx"]))
    onnx.checker.check_model(model)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [11]
    assert model.ir_version <= 7
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    assert len(inputs) == 1
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 256, 128]
    assert all(X3_RULES.known(n.op_type) for n in model.graph.node)
    # numerically the original model (batch 1, L2 left to the host on both sides)
    x = OSNET_SPEC(pku_split[0][:6])
    session = ort.InferenceSession(str(osnet_onnx), providers=["CPUExecutionProvider"])
    ref = session.run(None, {session.get_inputs()[0].name: x})[0]
    got = run_batch1(model, x)
    assert got.shape == ref.shape == (6, 512)
    assert rowwise_cosine(ref, got).min() >= 0.9999


@pytest.mark.assets
def test_yaml_and_calibration_files(osnet_bundle):
    staging, roles, _ = osnet_bundle
    cfg = yaml.safe_load((staging / roles["x3_config"]).read_text())
    assert list(cfg) == ["model_parameters", "input_parameters", "calibration_parameters", "compiler_parameters"]
    assert (staging / cfg["model_parameters"]["onnx_model"]).resolve() == (staging / roles["x3_onnx"]).resolve()
    cal_dir = staging / cfg["calibration_parameters"]["cal_data_dir"]
    assert cal_dir.resolve() == (staging / roles["x3_calib_dir"]).resolve()
    inp = cfg["input_parameters"]
    assert inp["input_name"] == "images" and inp["input_shape"] == "1x3x256x128"
    assert inp["input_type_rt"] == "nv12" and inp["input_space_and_range"] == "bt601_video"
    np.testing.assert_allclose([float(v) for v in inp["mean_value"].split()], [123.675, 116.28, 103.53])
    files = sorted(cal_dir.iterdir())
    assert len(files) == CALIB_CROPS  # fewer than 100 given: all of them
    assert {f.stat().st_size for f in files} == {3 * 256 * 128 * 4}
    first = np.fromfile(str(files[0]), np.float32).reshape(3, 256, 128)
    assert first.min() >= 0 and first.max() <= 255 and first.max() > 1  # raw pixels, not normalised


@pytest.mark.assets
def test_report_before_and_after(osnet_bundle):
    staging, roles, figures = osnet_bundle
    report = json.loads((staging / roles["x3_report"]).read_text())
    # OSNet's head (Reshape -> Gemm -> BatchNorm1d) is the only CPU work before the rewrites
    assert report["plain"]["cpu_op_types"] == ["BatchNormalization", "Reshape"]
    assert report["rewritten"]["cpu_nodes"] == 0 and report["rewritten"]["cpu_subgraphs"] == 0
    assert figures["cpu_subgraphs_before"] == report["plain"]["cpu_subgraphs"] == 2
    assert figures["bpu_mac_share"] == 1.0
    assert report["x3_output_shapes"] == {"output": [1, 512, 1, 1]}
    # no CPU subgraph: the estimate is the BPU time plus dequantizing the 512 outputs
    est = figures["x3_latency_estimate_ms"]
    assert est["cpu_ms"] == 0 and est["cpu_subgraphs"] == 0
    assert est["total_ms"] == pytest.approx(est["bpu_ms"] + est["handover_ms"])
    assert "bpu_macs_per_s" in report["cost_assumptions"]


@pytest.mark.assets
def test_simulated_int8_rank1_within_3_points(osnet_bundle):
    _, _, figures = osnet_bundle
    assert figures["fp32_rank1"] > 0.5  # the model really tells these people apart
    assert figures["fp32_rank1"] - figures["int8_sim_rank1"] <= 0.03
    assert figures["int8_sim_cosine_mean"] > 0.95


# -- bad input ---------------------------------------------------------------------------------------
def _tiny(builder, batch=1, op="Relu"):
    t = builder.node("Conv", ["x", builder.weight(4, 3, 1, 1)])
    out = builder.node(op, [t])
    return builder.model((batch, 3, 8, 4), out, [batch, 4, 8, 4])


@pytest.mark.parametrize(
    "options, batch, match",
    [
        ({"batch": 4}, 1, "batch 1 only"),
        ({}, 2, "batch 1 only"),
        ({"x3_input": "yuv444"}, 1, "x3-input"),
        ({"x3_cores": 3}, 1, "x3-cores"),
        ({"x3_bogus": 1}, 1, "unknown X3 options"),
    ],
)
def test_bad_input_is_refused(builder, tmp_path, rng, options, batch, match):
    path = tmp_path / "m.onnx"
    onnx.save(_tiny(builder, batch), str(path))
    crops = [rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)]
    with pytest.raises(InputError, match=match):
        add_x3_files(tmp_path, path, PreprocessSpec(8, 4), crops, [], None, options)


def test_unsupported_op_named_unless_allowed(builder, tmp_path, rng):
    path = tmp_path / "m.onnx"
    onnx.save(_tiny(builder, op="Hardmax"), str(path))  # 'CPU计算※' (not integrated) in supported_op_list.md
    crops = [rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)]
    with pytest.raises(InputError, match=r"Hardmax_\d+ \(Hardmax\)"):
        add_x3_files(tmp_path, path, PreprocessSpec(8, 4), crops, [], None, {})
    roles, figures = add_x3_files(tmp_path, path, PreprocessSpec(8, 4), crops, [], None, {"allow_unsupported": True})
    assert len(figures["unsupported_nodes"]) == 1


def test_spec_must_match_model(builder, tmp_path, rng):
    path = tmp_path / "m.onnx"
    onnx.save(_tiny(builder), str(path))
    with pytest.raises(InputError, match="PreprocessSpec"):
        add_x3_files(tmp_path, path, PreprocessSpec(16, 8), [np.zeros((8, 4, 3), np.uint8)], [], None, {})


# -- the folded RGA-SC -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rga_bundle(pku_crops, tmp_path_factory):
    torch = pytest.importorskip("torch")
    pytest.importorskip("edgereid.models.rga")
    from edgereid.models import load_model, preprocess_for

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model("rga_sc", folded=True)
    spec = preprocess_for("rga_sc")
    work = tmp_path_factory.mktemp("x3_rga")
    path = work / "rga_sc_folded.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, torch.zeros(1, 3, spec.height, spec.width), str(path), dynamo=False, opset_version=17,
            input_names=["images"], output_names=["feat"], dynamic_axes={"images": {0: "batch"}, "feat": {0: "batch"}},
        )
    staging = work / "bundle"
    staging.mkdir()
    # min/max ranges: untrained weights leave near-constant tensors that histograms cannot bin
    roles, figures = add_x3_files(staging, path, spec, pku_crops[:4], pku_crops[4:6], None, {"x3_calibration": "max"})
    return path, spec, staging, roles, figures


@pytest.mark.assets
def test_rga_sc_relation_products_on_the_bpu(rga_bundle):
    _, _, staging, roles, figures = rga_bundle
    report = json.loads((staging / roles["x3_report"]).read_text())
    assert report["rewrites"]["channel_mean_to_conv"] == 8  # 4 modules x (spatial + channel)
    assert report["rewrites"]["full_avgpool_to_gap"] == 1
    assert report["rewrites"]["relation_to_bpu_matmul"] == 8  # 4 modules x (spatial + channel)
    assert report["rewrites"]["pixel_gate_to_full"] == 4 and report["rewrites"]["sigmoid_after_reshape"] == 4
    assert "ReduceMean" in report["plain"]["cpu_op_types"] and "MatMul" in report["plain"]["cpu_op_types"]
    assert figures["bpu_mac_share"] >= 0.999 > figures["bpu_mac_share_before"]
    # what stays on the CPU: relayouts only (Reshape / Transpose rows of the document), 5 per module
    assert report["rewritten"]["cpu_op_types"] == ["Reshape", "Transpose"]
    assert figures["cpu_subgraphs"] == 20 < figures["cpu_subgraphs_before"]
    for cost in report["rewritten"]["cpu_subgraph_costs"]:
        assert cost["flops"] == 0 and cost["rules"] and cost["est_ms"]["total"] > 0
        assert all("supported_op_list.md" in r and (" row Reshape" in r or " row Transpose" in r)
                   for r in cost["rules"])
    est, before = figures["x3_latency_estimate_ms"], figures["x3_latency_estimate_ms_before"]
    assert est["total_ms"] < before["total_ms"]
    assert -1.0 <= figures["int8_sim_cosine_min"] <= figures["int8_sim_cosine_mean"] <= 1.0


@pytest.mark.assets
def test_rga_sc_x3_graph_equals_original(rga_bundle, pku_split):
    path, spec, staging, roles, _ = rga_bundle
    x = spec(pku_split[0][::40][:8])  # 8 real crops of 8 people
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = session.run(None, {"images": x})[0]
    got = run_batch1(onnx.load(str(staging / roles["x3_onnx"])), x)
    assert rowwise_cosine(ref, got).min() >= 0.9999
