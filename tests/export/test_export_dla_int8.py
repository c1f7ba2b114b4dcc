"""--target xavier --int8 --dla: the DLA's INT8 scale rules are met in calib.cache and the QDQ model."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgereid.calibration.trt_cache import parse_cache_text
from edgereid.export import export_bundle


def _net(path):
    """conv1 -> relu -> maxpool -> [conv2, conv3] -> concat -> avgpool -> flatten: (N, 3, 32, 16) -> (N, 256)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, s[-1], s[:-1]).astype(np.float32), n)
             for n, s in [("w1", (8, 3, 3, 3, 0.3)), ("w2", (4, 8, 1, 1, 0.2)), ("w3", (4, 8, 1, 1, 1.0))]]
    nodes = [
        helper.make_node("Conv", ["images", "w1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2", kernel_shape=[1, 1]),
        helper.make_node("Conv", ["p1", "w3"], ["c3"], name="conv3", kernel_shape=[1, 1]),
        helper.make_node("Concat", ["c2", "c3"], ["cat"], name="cat", axis=1),
        helper.make_node("AveragePool", ["cat"], ["ap"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["ap"], ["emb"], name="flat"),
    ]
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 16])
    y = helper.make_tensor_value_info("emb", TensorProto.FLOAT, [1, 256])
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _crops(root):
    rng = np.random.default_rng(1)
    for pid in range(1, 5):
        (root / f"{pid:03d}").mkdir(parents=True)
        for k in range(3):
            cv2.imwrite(str(root / f"{pid:03d}" / f"{k + 1}_a.png"), rng.integers(0, 255, (64, 32, 3), np.uint8))
    return root


def _qdq_scales(model):
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {n.input[0]: float(inits[n.input[1]]) for n in model.graph.node
            if n.op_type == "QuantizeLinear" and n.input[0] not in inits}


def test_dla_int8_ties_pooling_and_concat_scales(tmp_path):
    src, calib = _net(tmp_path / "net.onnx"), _crops(tmp_path / "crops")
    kw = dict(onnx=str(src), target="xavier", precision="int8", calib_data=str(calib), calib_size=6,
              calib_method="minmax", max_drop=None, progress=False)
    gpu = export_bundle(tmp_path / "gpu", **kw)
    dla = export_bundle(tmp_path / "dla", dla=True, batch=1, **kw)
    _, untied = parse_cache_text(gpu.path("calib_cache").read_text())
    _, tied = parse_cache_text(dla.path("calib_cache").read_text())
    assert untied["c2"] < untied["c3"]  # different weights scales: the rule really has work to do
    assert tied["r1"] == tied["p1"] == max(untied["r1"], untied["p1"])
    assert tied["c2"] == tied["c3"] == tied["cat"] == tied["ap"] == max(untied[t] for t in ("c2", "c3", "cat", "ap"))
    assert tied["c1"] == untied["c1"]  # tensors outside the groups keep theirs
    qdq = _qdq_scales(onnx.load(str(dla.path("onnx_int8_qdq"))))
    assert qdq["p1"] == tied["p1"]  # a weighted op's input: quantized with the tied scale
    assert "c2" not in qdq and "c3" not in qdq  # Concat inputs: no Q/DQ (TensorRT's placement); DLA reads the cache
    assert dla.manifest.extra["int8"]["dla_tied_scale_groups"] == 2
    report = {d["node"]: d for d in json.loads(dla.path("dla_report").read_text())["layers"]}
    assert {report[n]["device"] for n in ("pool1", "cat", "pool2")} == {"DLA"}
    untied_report = {d["node"]: d for d in json.loads(gpu.path("dla_report").read_text())["layers"]}
    assert untied_report["cat"]["device"] == "GPU" and "needs one scale" in untied_report["cat"]["reason"]
