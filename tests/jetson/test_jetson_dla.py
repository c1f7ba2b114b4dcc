from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgereid.jetson.dla import (
    count_dla_islands,
    count_transitions,
    dla_report,
    node_verdict,
    scale_groups,
    tie_amax,
)


@pytest.mark.parametrize(
    "op, attrs, shapes, device, why",
    [
        ("Conv", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, [[1, 64, 64, 32]], "DLA", "Convolution"),
        ("Conv", {"kernel_shape": [33, 1]}, [[1, 64, 64, 32]], "GPU", "kernel"),
        ("Conv", {"kernel_shape": [3, 3], "strides": [9, 9]}, [[1, 64, 64, 32]], "GPU", "stride"),
        ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, [[1, 64, 64, 32]], "DLA",
         "Pooling"),
        ("AveragePool", {"kernel_shape": [16, 8]}, [[1, 2048, 16, 8]], "GPU", "window"),
        ("GlobalAveragePool", {}, [[1, 2048, 16, 8]], "GPU", "Reduce"),
        ("MatMul", {}, [[1, 64, 32], [1, 32, 64]], "GPU", "MatrixMultiply"),
        ("Add", {}, [[1, 64, 8, 8], [1, 64, 8, 8]], "DLA", "ElementWise"),
        ("Mul", {}, [[1, 64, 8, 8], [1, 64, 1, 1]], "GPU", "broadcast"),
        ("Concat", {"axis": 1}, [[1, 64, 8, 8], [1, 64, 8, 8]], "DLA", "Concatenation"),
        ("Concat", {"axis": 2}, [[1, 64, 8, 8], [1, 64, 8, 8]], "GPU", "channel axis"),
        ("Relu", {}, [["batch", 64, 8, 8]], "GPU", "dynamic"),
        ("Relu", {}, [[1, 9000, 1, 1]], "GPU", "8192"),
        ("Reshape", {}, [[1, 64, 8, 8]], "GPU", "Shuffle"),
        ("Gemm", {"transB": 1}, [[1, 512], [10, 512]], "GPU", "MatrixMultiply + ElementWise"),
    ],
)
def test_node_verdicts(op, attrs, shapes, device, why):
    got, reason = node_verdict(op, attrs, shapes)
    assert got == device and why in reason


def test_transitions_and_islands_counted():
    devices = {"a": "DLA", "b": "DLA", "c": "GPU", "d": "DLA", "e": "GPU"}
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"), ("a", "e")]
    assert count_transitions(devices, edges) == 4  # b->c, c->d, d->e, a->e
    assert count_dla_islands(devices, edges) == 2  # {a, b} and {d}


def test_report_on_a_small_graph():
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Sigmoid", ["g"], ["y"], name="sig"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 1, 1])], [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rep = dla_report(model, batch=1)
    assert [d["device"] for d in rep["layers"]] == ["DLA", "DLA", "GPU", "DLA"]
    assert rep["gpu_dla_transitions"] == 2 and rep["dla_islands"] == 2
    assert rep["dynamic_batch"] and not rep["usable"]
    assert not dla_report(model)["dla_layers"]  # unfixed dynamic batch: nothing on the DLA


def _pool_concat_net():
    """conv1 -> relu1 -> maxpool -> [conv2, conv3] -> concat -> avgpool (INT8 DLA scale rules)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 1, s).astype(np.float32), n)
             for n, s in [("w1", (8, 3, 3, 3)), ("w2", (4, 8, 1, 1)), ("w3", (4, 8, 1, 1))]]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2", kernel_shape=[1, 1]),
        helper.make_node("Conv", ["p1", "w3"], ["c3"], name="conv3", kernel_shape=[1, 1]),
        helper.make_node("Concat", ["c2", "c3"], ["cat"], name="cat", axis=1),
        helper.make_node("AveragePool", ["cat"], ["y"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 4, 2])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_scale_groups_and_tying():
    model = _pool_concat_net()
    groups = scale_groups(model)
    # pool1: r1 ~ p1; concat: c2, c3 ~ cat; pool2: cat ~ y (merged with the concat group)
    assert sorted(map(sorted, groups)) == [["c2", "c3", "cat", "y"], ["p1", "r1"]]
    amax = {"x": 3.0, "c1": 5.0, "r1": 5.0, "p1": 4.5, "c2": 2.0, "c3": 7.0, "cat": 7.0, "y": 3.5}
    tied = tie_amax(amax, groups)
    assert tied == {"x": 3.0, "c1": 5.0, "r1": 5.0, "p1": 5.0, "c2": 7.0, "c3": 7.0, "cat": 7.0, "y": 7.0}


def test_dla_report_applies_the_int8_scale_rules():
    model = _pool_concat_net()
    amax = {"x": 3.0, "c1": 5.0, "r1": 5.0, "p1": 4.5, "c2": 2.0, "c3": 7.0, "cat": 7.0, "y": 3.5}
    fp16 = {d["node"]: d for d in dla_report(model)["layers"]}
    assert {fp16[n]["device"] for n in ("pool1", "cat", "pool2")} == {"DLA"}
    untied = {d["node"]: d for d in dla_report(model, amax=amax)["layers"]}
    for name in ("pool1", "cat", "pool2"):
        assert untied[name]["device"] == "GPU" and "--dla to tie" in untied[name]["reason"]
    tied = dla_report(model, amax=tie_amax(amax, scale_groups(model)))
    assert tied["int8_scale_rules"] and tied["gpu_layers"] == 0
