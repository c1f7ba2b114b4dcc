"""Empirical bias correction: each corrected layer's mean INT8 error vanishes on the calibration feeds,
only biases change, and the gain carries over to crops it never saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgereid.calibration.bias_correction import biased_layers, channel_means, correct_biases, layer_levels
from edgereid.calibration.fakequant import fake_quant_session
from edgereid.calibration.qdq import quantize_qdq
from edgereid.calibration.ranges import calibrate_ranges
from edgereid.calibration.reader import CropBatches
from edgereid.preprocess import PreprocessSpec

SPEC = PreprocessSpec(height=24, width=12)


def _net(path: Path) -> Path:
    """input -> conv_a, conv_b (parallel) -> Add -> Relu -> conv_c -> GAP -> Flatten -> Gemm."""
    rng = np.random.default_rng(3)

    def init(name, *shape, scale=0.3, shift=0.0):
        return numpy_helper.from_array((rng.normal(shift, scale, shape)).astype(np.float32), name)

    inits = [init("wa", 8, 3, 3, 3), init("ba", 8, scale=0.1), init("wb", 8, 3, 1, 1), init("bb", 8, scale=0.1),
             # skewed weights: their rounding error does not average out per channel
             init("wc", 16, 8, 3, 3, scale=0.2, shift=0.05), init("bc", 16, scale=0.1),
             init("wf", 6, 16, scale=0.2), init("bf", 6, scale=0.1)]
    nodes = [
        helper.make_node("Conv", ["images", "wa", "ba"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["images", "wb", "bb"], ["b"], name="conv_b"),
        helper.make_node("Add", ["a", "b"], ["ab"], name="add"),
        helper.make_node("Relu", ["ab"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "wc", "bc"], ["c"], name="conv_c", pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["emb"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 24, 12])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["N", 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _crops(seed: int, n: int) -> list:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (24, 12, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bias")
    net = _net(tmp / "net.onnx")
    ranges = calibrate_ranges(net, CropBatches(_crops(0, 32), SPEC, "images", 8), "percentile", progress=False)
    qdq = quantize_qdq(net, tmp / "q.onnx", ranges, "trt")
    return onnx.load(str(net)), onnx.load(str(qdq)), tmp


def _mean_errors(float_model, qdq_model, feeds) -> dict:
    names = [n.output[0] for n in biased_layers(float_model)]
    ref = channel_means(float_model, names, feeds)
    got = channel_means(qdq_model, names, feeds)
    return {name: np.abs(ref[name] - got[name]) for name in names}


def test_levels_follow_the_graph(models):
    float_model, _, _ = models
    layers = biased_layers(float_model)
    assert [n.name for n in layers] == ["conv_a", "conv_b", "conv_c", "fc"]
    assert layer_levels(float_model, layers) == {"conv_a": 0, "conv_b": 0, "conv_c": 1, "fc": 2}
    # a layer's level counts only the corrected layers above it
    assert layer_levels(float_model, [layers[0], layers[3]]) == {"conv_a": 0, "fc": 1}


def test_correction_cancels_the_mean_error_and_changes_only_biases(models):
    float_model, qdq_model, _ = models
    feeds = list(CropBatches(_crops(1, 32), SPEC, "images", 8))
    before = _mean_errors(float_model, qdq_model, feeds)
    corrected, report = correct_biases(float_model, qdq_model, feeds)
    after = _mean_errors(float_model, corrected, feeds)
    assert report["layers"] == 4 and report["levels"] == 3 and report["feeds"] == 4
    assert before["c"].max() > 1e-3  # there was an offset to remove
    for name in before:  # on the feeds it was measured on, every layer's mean error is gone
        assert after[name].max() < 1e-5, (name, before[name].max(), after[name].max())
    old = {i.name: numpy_helper.to_array(i) for i in qdq_model.graph.initializer}
    new = {i.name: numpy_helper.to_array(i) for i in corrected.graph.initializer}
    changed = {k for k in old if not np.array_equal(old[k], new[k])}
    assert changed == {"ba", "bb", "bc", "bf"}
    assert [n.op_type for n in corrected.graph.node] == [n.op_type for n in qdq_model.graph.node]


def test_correction_helps_on_unseen_crops(models):
    float_model, qdq_model, tmp = models
    corrected, _ = correct_biases(float_model, qdq_model, list(CropBatches(_crops(1, 32), SPEC, "images", 8)))
    unseen = list(CropBatches(_crops(2, 32), SPEC, "images", 8))
    before = _mean_errors(float_model, qdq_model, unseen)
    after = _mean_errors(float_model, corrected, unseen)
    assert after["c"].mean() < 0.5 * before["c"].mean()
    paths = {}
    for name, model in (("float", float_model), ("qdq", qdq_model), ("corrected", corrected)):
        paths[name] = tmp / f"{name}-run.onnx"
        onnx.save(model, str(paths[name]))
    x = np.concatenate([f["images"] for f in unseen])
    ref, q, c = (fake_quant_session(paths[k]).run(None, {"images": x})[0] for k in ("float", "qdq", "corrected"))
    assert np.square(c - ref).mean() < np.square(q - ref).mean()


def test_excluded_layers_keep_their_bias(models):
    float_model, qdq_model, _ = models
    feeds = list(CropBatches(_crops(1, 16), SPEC, "images", 8))
    corrected, report = correct_biases(float_model, qdq_model, feeds, exclude=["conv_c"])
    assert report["layers"] == 3
    bias = {i.name: numpy_helper.to_array(i) for i in corrected.graph.initializer}["bc"]
    np.testing.assert_array_equal(bias, numpy_helper.to_array(next(i for i in qdq_model.graph.initializer
                                                                   if i.name == "bc")))
    untouched, empty = correct_biases(float_model, qdq_model, [])
    assert empty["layers"] == 0


def test_a_time_budget_uses_fewer_feeds(models):
    """levels x feeds passes: a model too slow for the budget is corrected on fewer (spread) feeds."""
    float_model, qdq_model, _ = models
    feeds = list(CropBatches(_crops(1, 32), SPEC, "images", 4))
    _, full = correct_biases(float_model, qdq_model, feeds, time_budget_s=None)
    _, tight = correct_biases(float_model, qdq_model, feeds, time_budget_s=1e-9)
    assert full["feeds"] == 8 and tight["feeds"] == 1 and tight["layers"] == 4


def test_a_shared_bias_is_left_alone(models):
    """One bias used by two Conv nodes cannot cancel two offsets: it is not corrected at all."""
    float_model, qdq_model, _ = models
    shared_f, shared_q = onnx.ModelProto(), onnx.ModelProto()
    shared_f.CopyFrom(float_model)
    shared_q.CopyFrom(qdq_model)
    for model in (shared_f, shared_q):
        conv_b = next(n for n in model.graph.node if n.name == "conv_b")
        conv_b.input[2] = "ba"  # conv_a's bias (both have 8 channels)
    assert [n.name for n in biased_layers(shared_f)] == ["conv_c", "fc"]
    corrected, report = correct_biases(shared_f, shared_q, list(CropBatches(_crops(1, 16), SPEC, "images", 8)))
    assert report["layers"] == 2 and set(report["biases"]) == {"bc", "bf"}
    ba = {i.name: numpy_helper.to_array(i) for i in corrected.graph.initializer}["ba"]
    np.testing.assert_array_equal(ba, numpy_helper.to_array(next(i for i in shared_q.graph.initializer
                                                                 if i.name == "ba")))
