from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgereid.jetson.dla import count_dla_islands, count_transitions, dla_report, node_verdict


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
