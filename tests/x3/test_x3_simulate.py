"""The simulated X3 INT8 model: BPU nodes quantized (int8, per-channel weights), CPU nodes float."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.preprocess import PreprocessSpec
from edgereid.x3.placement import placement_report
from edgereid.x3.simulate import accuracy_report, quantized_nodes, simulate_x3_int8

pytest.importorskip("onnxruntime")


def test_cpu_nodes_stay_float(builder, rng):
    """Tensors between CPU nodes and CPU weights stay float; BPU weights are int8 per channel.

    (A BPU -> CPU hand-over is dequantized int8 and a CPU -> BPU one is quantized, as on the X3.)
    """
    from onnx import numpy_helper

    b = builder
    t = b.node("Conv", ["x", b.weight(4, 3, 3, 3)], pads=[1, 1, 1, 1])
    t = b.node("Sigmoid", [t])  # padded 8W4C size 4*48*48 = 9216 > 8192: CPU
    t = b.node("Log", [t])  # CPU (supported_op_list.md row Log)
    t = b.node("Conv", [t, b.weight(8, 4, 1, 1)])
    t = b.node("Reshape", [t, b.const(np.array([1, 8, -1], np.int64))])  # CPU
    out = b.node("MatMul", [t, b.weight(1, 1, 48 * 48, 5, scale=0.02)])  # 1xMxK x 1x1xKxN: not listed, CPU
    model = b.model((1, 3, 48, 48), out, [1, 1, 8, 5])
    rep = placement_report(model)
    cpu = [n["node"] for n in rep["nodes"] if n["device"] == "cpu"]
    assert [n["op_type"] for n in rep["nodes"] if n["device"] == "cpu"] == ["Sigmoid", "Log", "Reshape", "MatMul"]
    spec = PreprocessSpec(48, 48)
    crops = [rng.integers(0, 256, (60, 50, 3), dtype=np.uint8) for _ in range(4)]
    int8, method = simulate_x3_int8(model, cpu, crops, spec, "x", "max")
    assert method == "minmax" and int8.opset_import[0].version >= 13
    producer = {o: n for n in int8.graph.node for o in n.output}
    inits = {i.name: numpy_helper.to_array(i) for i in int8.graph.initializer}
    nodes = {n.name: n for n in int8.graph.node}
    exp = next(n for n in int8.graph.node if n.op_type == "Log")
    assert producer[exp.input[0]].op_type == "Sigmoid"  # CPU -> CPU: float, no Q/DQ
    matmul = next(n for n in int8.graph.node if n.op_type == "MatMul")
    assert inits[matmul.input[1]].dtype == np.float32  # CPU weight: float
    for name in (n.name for n in model.graph.node if n.op_type == "Conv"):
        deq = producer[nodes[name].input[1]]
        assert deq.op_type == "DequantizeLinear"
        w = inits[deq.input[0]]
        assert w.dtype == np.int8 and inits[deq.input[1]].shape == (w.shape[0],)  # per-channel scales
        assert not inits[deq.input[2]].any()  # symmetric: zero points 0
    assert set(quantized_nodes(int8)) >= {n.name for n in model.graph.node if n.op_type == "Conv"}
    report = accuracy_report(model, int8, crops, spec)
    assert report["num_crops"] == 4 and 0.9 < report["cosine_mean"] <= 1.0
