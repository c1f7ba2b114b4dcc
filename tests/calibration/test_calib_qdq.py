"""QDQ flavours and chunked calibration on a tiny stand-in embedder (Conv, MatMul, Gemm)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from edgereid.calibration.qdq import check_trt_qdq, qdq_options, qdq_properties, quantize_qdq
from edgereid.calibration.ranges import activation_bytes_per_feed, calibrate_ranges, feeds_per_chunk
from edgereid.calibration.reader import CropBatches, OrtReader
from edgereid.preprocess import PreprocessSpec

SPEC = PreprocessSpec(height=32, width=16)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    torch = pytest.importorskip("torch")

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.conv2 = torch.nn.Conv2d(8, 8, 1)
            self.fc = torch.nn.Linear(8, 6)

        def forward(self, x):
            y = torch.relu(self.conv(x))
            z = self.conv2(y).flatten(2)  # (N, 8, HW)
            attn = torch.matmul(z, z.transpose(1, 2)) / 512.0  # activation x activation MatMul
            pooled = (torch.matmul(attn, z)).mean(2)
            return self.fc(pooled)

    path = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    from edgereid.export.onnx_tools import export_torch

    export_torch(Tiny().eval(), path, 32, 16, batch=1, dynamic_batch=True, opset=17)
    return path


@pytest.fixture(scope="module")
def crops():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (40 + i, 20, 3), dtype=np.uint8) for i in range(12)]


def test_qdq_options_are_tensorrt_form():
    trt = qdq_options("trt")
    assert trt["activation_type"] == "QInt8" and trt["weight_type"] == "QInt8" and trt["per_channel"]
    ex = trt["extra_options"]
    assert ex["AddQDQPairToWeight"] is True and ex["QuantizeBias"] is False
    assert ex["ActivationSymmetric"] is True and ex["WeightSymmetric"] is True
    assert ex["QDQOpTypePerChannelSupportToAxis"] == {"MatMul": 1}
    assert qdq_options("cpu")["activation_type"] == "QUInt8"


def test_chunked_calibration_equals_one_pass(tiny_onnx, crops):
    batches = CropBatches(crops, SPEC, "images", batch=2)
    one = calibrate_ranges(tiny_onnx, batches, "minmax", budget_bytes=1 << 40, progress=False)
    per_feed = activation_bytes_per_feed(tiny_onnx, 2)
    assert feeds_per_chunk(per_feed, per_feed) == 1
    chunked = calibrate_ranges(tiny_onnx, batches, "minmax", budget_bytes=per_feed, progress=False)
    assert one.ranges.keys() == chunked.ranges.keys()
    for k in one.ranges:
        assert chunked.ranges[k] == pytest.approx(one.ranges[k], rel=1e-6)
    # the graph input range is exactly the preprocessed data's symmetric amax
    x = SPEC(crops)
    assert one.amax("images") == pytest.approx(float(np.abs(x).max()), rel=1e-6)


def test_trt_qdq_properties_and_runs(tiny_onnx, crops, tmp_path):
    ranges = calibrate_ranges(tiny_onnx, CropBatches(crops, SPEC, "images", 4), "percentile", progress=False)
    out = quantize_qdq(tiny_onnx, tmp_path / "q.onnx", ranges, "trt")
    model = onnx.load(str(out))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    props = qdq_properties(model)
    assert props["zero_point_dtypes"] == ["int8"] and props["nonzero_zero_points"] == 0
    assert props["int_initializers"] == []  # weights stay float behind Q/DQ, biases float
    assert props["per_tensor_activations"]
    conv_w = {n: a for n, a in props["weight_axes"].items() if inits[n].ndim == 4}
    assert conv_w and set(conv_w.values()) == {0}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] in conv_w:
            assert inits[node.input[1]].shape == (inits[node.input[0]].shape[0],)  # one scale per out channel
    gemm = [n for n in model.graph.node if n.op_type == "Gemm"]
    assert gemm and all(a.i == 1 for n in gemm for a in n.attribute if a.name == "transB")
    assert check_trt_qdq(out)["quantize_nodes"] == props["quantize_nodes"] > 0
    assert any(n.op_type == "MatMul" for n in model.graph.node)
    s0 = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    s1 = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = SPEC(crops[:3])
    a, b = s0.run(None, {"images": x})[0], s1.run(None, {"images": x})[0]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.98


def test_trt_qdq_quantizes_inputs_of_weighted_ops_only(tiny_onnx, crops, tmp_path):
    """TensorRT's placement: every activation Q/DQ feeds a Conv/Gemm/MatMul; no output is rounded
    on its own (a Conv -> ReLU -> Conv chain would otherwise be rounded twice)."""
    ranges = calibrate_ranges(tiny_onnx, CropBatches(crops, SPEC, "images", 4), "percentile", progress=False)
    for flavour, outputs_quantized in (("trt", False), ("cpu", True)):
        model = onnx.load(str(quantize_qdq(tiny_onnx, tmp_path / f"{flavour}.onnx", ranges, flavour)))
        inits = {i.name for i in model.graph.initializer}
        consumers: dict = {}
        for node in model.graph.node:
            for name in node.input:
                consumers.setdefault(name, []).append(node.op_type)
        dq_outputs = [n.output[0] for n in model.graph.node
                      if n.op_type == "DequantizeLinear" and n.input[0] not in inits]
        fed = {op for t in dq_outputs for op in consumers.get(t, [])}
        assert fed, flavour
        if outputs_quantized:  # ORT's own form (the cpu flavour) also rounds the Relu's input
            assert fed - {"Conv", "Gemm", "MatMul"}, (flavour, fed)
        else:
            assert fed <= {"Conv", "Gemm", "MatMul"}, (flavour, fed)


def test_cpu_flavour_is_u8s8(tiny_onnx, crops, tmp_path):
    ranges = calibrate_ranges(tiny_onnx, CropBatches(crops, SPEC, "images", 4), "minmax",
                              symmetric=False, progress=False)
    out = quantize_qdq(tiny_onnx, tmp_path / "u8.onnx", ranges, "cpu")
    model = onnx.load(str(out))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    act_zp = {inits[n.input[2]].dtype.name for n in model.graph.node
              if n.op_type == "QuantizeLinear" and n.input[0] not in inits}
    assert act_zp == {"uint8"}
    ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"images": SPEC(crops[:2])})


def test_ort_reader_single_pass():
    r = OrtReader([{"a": 1}, {"a": 2}])
    assert r.get_next() == {"a": 1} and r.get_next() == {"a": 2} and r.get_next() is None


def test_crop_batches_static_batch_wraps(crops):
    feeds = list(CropBatches(crops[:5], SPEC, "images", batch=4, exact=True))
    assert [f["images"].shape[0] for f in feeds] == [4, 4]
    assert np.array_equal(feeds[1]["images"][1], SPEC(crops[:1])[0])


def test_fast_histogram_merge_matches_ort(tiny_onnx, crops):
    batches = CropBatches(crops, SPEC, "images", batch=2)
    per_feed = activation_bytes_per_feed(tiny_onnx, 2)  # one feed per chunk: 6 merges
    fast = calibrate_ranges(tiny_onnx, batches, "percentile", budget_bytes=per_feed, progress=False)
    ort_merge = calibrate_ranges(tiny_onnx, batches, "percentile", budget_bytes=per_feed, progress=False,
                                 fast_histograms=False)
    assert fast.ranges.keys() == ort_merge.ranges.keys()
    for k in fast.ranges:  # equal up to one histogram bin (2048 bins)
        assert fast.amax(k) == pytest.approx(ort_merge.amax(k), rel=2e-3, abs=1e-6), k
