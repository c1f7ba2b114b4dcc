"""trtexec layer files (TREx JSON layout) compared with the DLA report and the intended precision."""

from __future__ import annotations

import json

import pytest

from edgereid.errors import InputError
from edgereid.jetson.layers import compare_layers, layers_markdown, parse_layer, precision_of, read_layer_info

DLA_REPORT = {"nodes": [{"node": n, "op_type": t, "device": d, "reason": None} for n, t, d in (
    ("/conv1/Conv", "Conv", "DLA"), ("/relu1/Relu", "Relu", "DLA"), ("/conv2/Conv", "Conv", "DLA"),
    ("/gap/GlobalAveragePool", "GlobalAveragePool", "DLA"), ("/fc/Gemm", "Gemm", "GPU"))]}


def _io(fmt):
    return [{"Name": "t", "Dimensions": [1, 8, 4, 4], "Format/Datatype": fmt}]


LAYERS = {"Layers": [
    {"Name": "Reformatting CopyNode for Input Tensor 0 to {ForeignNode[/conv1/Conv.../conv2/Conv]}",
     "LayerType": "Reformat", "Inputs": _io("Row major linear FP32"), "Outputs": _io("Row major Int8 format")},
    {"Name": "{ForeignNode[/conv1/Conv.../conv2/Conv]}", "LayerType": "DLA",
     "Inputs": _io("Four wide channel vectorized row major Int8 format"), "Outputs": _io("Row major Int8 format")},
    {"Name": "/gap/GlobalAveragePool", "LayerType": "CaskPooling",
     "Inputs": _io("Channel major FP16 format where channel % 8 == 0"), "Outputs": _io("Row major linear FP16 format")},
    {"Name": "/fc/Gemm + /fc/Add", "LayerType": "CaskGemm", "Inputs": _io("Row major linear FP32"),
     "Outputs": _io("Row major linear FP32")},
], "Bindings": ["images", "output"]}


@pytest.mark.parametrize("fmt, precision", [
    ("Row major linear FP32", "FP32"), ("Channel major FP16 format where channel % 8 == 0", "FP16"),
    ("Thirty-two wide channel vectorized row major Int8 format", "INT8"), ("Row major linear Int32", "INT32"),
    ("Unknown format", "unknown")])
def test_precision_from_format_strings(fmt, precision):
    assert precision_of(fmt) == precision


def test_foreign_node_is_dla_with_its_node_range():
    layer = parse_layer(LAYERS["Layers"][1])
    assert (layer.device, layer.precision, layer.node_range) == ("DLA", "INT8", ("/conv1/Conv", "/conv2/Conv"))
    assert parse_layer("/fc/Gemm + /fc/Add").onnx_nodes == ["/fc/Gemm", "/fc/Add"]  # layer_names_only files


def test_compare_with_dla_report_and_int8_intent(tmp_path):
    path = tmp_path / "model.dla0.layers.json"
    path.write_text(json.dumps(LAYERS))
    layers = read_layer_info(path)
    report = compare_layers(layers, DLA_REPORT, "INT8", {"{ForeignNode[/conv1/Conv.../conv2/Conv]}": 3.0,
                                                         "/gap/GlobalAveragePool": 0.5, "/fc/Gemm + /fc/Add": 0.5})
    assert (report["layers"], report["reformat_layers"], report["dla_layers"], report["gpu_layers"]) == (3, 1, 1, 2)
    assert report["precision_counts"] == {"INT8": 1, "FP16": 1, "FP32": 1}
    # relu1 sits inside the ForeignNode range; gap was predicted DLA but built on the GPU
    assert report["nodes_compared"] == 5
    assert report["placement_mismatches"] == [{"node": "/gap/GlobalAveragePool", "predicted": "DLA", "actual": "GPU"}]
    assert [w["layer"] for w in report["wider_than_intended"]] == ["/gap/GlobalAveragePool", "/fc/Gemm + /fc/Add"]
    assert report["dla_time_share"] == pytest.approx(0.75) and report["ok"] is False
    text = layers_markdown(report)
    assert "/gap/GlobalAveragePool: predicted DLA, built on GPU" in text and text.endswith("DIFFERENT from the plan "
                                                                                           "(see above)\n")


def test_fp16_intent_accepts_fp16_and_int8_layers():
    layers = [parse_layer(raw) for raw in LAYERS["Layers"][:3]]
    report = compare_layers(layers, None, "FP16")
    assert report["wider_than_intended"] == [] and report["ok"] is True and report["nodes_compared"] == 0


def test_bad_layer_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_layer_info(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"layers": []}')
    with pytest.raises(InputError, match="not a trtexec --exportLayerInfo file"):
        read_layer_info(bad)


def test_reid_bench_layers_command(tmp_path, capsys, onnx_bundle):
    from edgereid.bundle import Bundle, write_manifest
    from edgereid.cli.bench import main

    root = tmp_path / "b"
    root.mkdir()
    (root / "dla_report.json").write_text(json.dumps(DLA_REPORT))
    (root / "calib.cache").write_text("TRT-8502-EntropyCalibration2\n")
    onnx_bundle(root, {}, files={"dla_report": "dla_report.json", "calib_cache": "calib.cache"})
    b = Bundle.load(root)
    b.manifest.inputs[0]["shape"] = [1, 3, 256, 128]
    b.manifest.extra["trt"] = {"profile": {"min": 1, "opt": 1, "max": 1}, "dla": True, "default_mode": "dla0"}
    write_manifest(root, b.manifest)
    (root / "model.dla0.layers.json").write_text(json.dumps(LAYERS))
    out = tmp_path / "layers.json"
    assert main(["layers", "--bundle", str(root), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "engine layers: 3 (1 DLA, 2 GPU)" in text and "(intended INT8)" in text
    rep = json.loads(out.read_text())
    assert rep["mode"] == "dla0" and len(rep["placement_mismatches"]) == 1
    assert main(["layers", "--bundle", str(root), "--mode", "dla1"]) == 2  # not built: one clear message
    assert "model.dla1.layers.json" in capsys.readouterr().err
