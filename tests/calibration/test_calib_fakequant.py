"""The simulated INT8 figure is float fake-quantization, equal to a numpy reference on any host."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgereid.calibration.fakequant import FAKE_QUANT_CONFIG, fake_quant_options, fake_quant_session
from edgereid.calibration.qdq import quantize_qdq
from edgereid.calibration.ranges import TensorRanges
from edgereid.preprocess import PreprocessSpec
from edgereid.runtime.embedder import OnnxruntimeEmbedder

RANGES = {"x": (-2.5, 2.5), "c1": (-3.0, 3.0), "r1": (0.0, 3.0), "y": (-4.0, 4.0)}


def _weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32),
        "b1": rng.normal(0, 0.1, (8,)).astype(np.float32),
        "w2": rng.normal(0, 0.3, (4, 8, 3, 3)).astype(np.float32),
    }


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """Conv(3->8, 3x3, bias) -> Relu -> Conv(8->4, 3x3), dynamic batch, and its TensorRT-form QDQ model."""
    w = _weights()
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["y"], name="conv2", pads=[1, 1, 1, 1]),
    ]
    root = tmp_path_factory.mktemp("fq")
    _save_net(nodes, w, root / "f.onnx")
    quantize_qdq(root / "f.onnx", root / "q.onnx", TensorRanges("minmax", RANGES), "trt")
    return root / "f.onnx", root / "q.onnx", w


def _save_net(nodes: list, weights: dict[str, np.ndarray], path) -> None:
    """A float ONNX model x (n, 3, 12, 6) -> y of these nodes and initializers."""
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 12, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _fq(x: np.ndarray, scale: np.ndarray | float, lo: int = -128, hi: int = 127) -> np.ndarray:
    """Symmetric int8 quantize-dequantize, round half to even (ONNX QuantizeLinear)."""
    scale = np.asarray(scale, np.float32)
    return (np.clip(np.rint(x / scale), lo, hi) * scale).astype(np.float32)


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Same-padded 3x3 convolution, float64 accumulation: (N, C, H, W) x (K, C, 3, 3) -> (N, K, H, W)."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # N, C, H, W, 3, 3
    out = np.einsum("nchwij,kcij->nkhw", win, w.astype(np.float64))
    if b is not None:
        out += b[None, :, None, None]
    return out.astype(np.float32)


def _reference(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """Fake-quant forward pass written from the QDQ rules, not read from the QDQ model."""
    amax = {k: max(abs(lo), abs(hi)) for k, (lo, hi) in RANGES.items()}
    act = {k: np.float32(v) / np.float32(127) for k, v in amax.items()}

    def wq(v):  # per-output-channel symmetric weights, 127 levels each side
        s = (np.abs(v).reshape(len(v), -1).max(1) / np.float32(127)).astype(np.float32)
        return _fq(v, s.reshape(-1, 1, 1, 1), -127, 127)

    # TensorRT's placement: Q/DQ on each conv's input and weights only, the outputs stay float
    c1 = _conv(_fq(x, act["x"]), wq(w["w1"]), w["b1"])
    r1 = _fq(np.maximum(c1, 0), act["r1"])
    return _conv(r1, wq(w["w2"]))


def test_session_options_are_pinned():
    opts = fake_quant_options()
    assert FAKE_QUANT_CONFIG == {"session.disable_quant_qdq": "1"}
    assert opts.get_session_config_entry("session.disable_quant_qdq") == "1"
    import onnxruntime as ort

    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC


def test_simulated_int8_equals_numpy_fake_quant(net):
    fpath, qpath, w = net
    x = np.random.default_rng(1).normal(0, 1, (3, 3, 12, 6)).astype(np.float32) * 1.5
    ref = _reference(x, w)
    got = fake_quant_session(qpath).run(None, {"x": x})[0]
    step = 4.0 / 127  # one quantization step of a tensor with amax 4
    diff = np.abs(got - ref)
    # float32 vs float64 accumulation may move an r1 value that sits on a rounding edge by one
    # step, which moves the outputs it feeds by at most step * max |w2|
    assert diff.max() <= 3.0 / 127 * float(np.abs(w["w2"]).max()) * 1.01 and (diff > 1e-4).mean() < 0.002
    float_out = fake_quant_session(fpath).run(None, {"x": x})[0]
    assert np.abs(float_out - ref).max() > 2 * step  # the quantization is really there
    assert (np.abs(x) > 2.5).any()  # and the input clipping is exercised


def test_embedder_fake_quant_matches_the_session(net):
    """OnnxruntimeEmbedder(fake_quant=True) is the path the manifest's accuracy report takes."""
    _, qpath, w = net
    x = np.random.default_rng(2).normal(0, 1, (2, 3, 12, 6)).astype(np.float32)
    spec = PreprocessSpec(12, 6)
    with OnnxruntimeEmbedder(str(qpath), spec, providers=["CPUExecutionProvider"], fake_quant=True, l2=False) as e:
        got = e.infer(x)
    ref = _reference(x, w).reshape(2, -1)
    assert np.abs(got - ref).max() <= 4.0 / 127 * 1.01


def test_int8_backends_choose_what_stands_for_the_device(net, tmp_path, onnx_bundle):
    """ort-int8: a TensorRT-form QDQ stands for the device (fake-quant), a cpu u8s8 model runs ORT's
    kernels (what the CPU runs); ort-int8-sim: always fake-quant."""
    from edgereid.runtime.embedder import load_embedder

    fpath, qpath, _ = net
    spec = PreprocessSpec(12, 6)
    xavier = onnx_bundle(tmp_path / "x", {"onnx": fpath, "onnx_int8_qdq": qpath}, spec=spec)
    cpu = onnx_bundle(tmp_path / "c", {"onnx": fpath, "onnx_int8_cpu": qpath}, spec=spec)
    assert load_embedder(xavier, "ort-int8").fake_quant is True
    assert load_embedder(cpu, "ort-int8").fake_quant is False
    assert load_embedder(cpu, "ort-int8-sim").fake_quant is True
    assert load_embedder(xavier, "ort").fake_quant is False
    from edgereid.benchmarks.harness import EmbedderTarget

    assert EmbedderTarget(xavier, "ort-int8").runner.fake_quant is False  # reid-bench times ORT's kernels


def test_float_layers_of_a_u8s8_model_stay_float_in_ort_kernels(tmp_path):
    """A layer the accuracy-aware search keeps float (conv2: Conv -> Conv -> Relu -> Conv as in OSNet's
    LightConv) sits between a DQ and a Q in the u8s8 form;
    ORT's WeightBiasQuantization would quantize its weight per-tensor (fakequant.py). One weight
    is 100x the others, so per-tensor int8 rounds most of them to 0 or one step: the embedder's
    kernel session must still match the fake-quant simulation."""
    from edgereid.calibration.fakequant import KEEP_FLOAT_LAYERS_DISABLED_OPTIMIZERS, ort_session

    rng = np.random.default_rng(3)
    w2 = rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32)
    w2[0, 0, 0, 0] = 30.0  # per-tensor step 30/127: most weights round to 0 or +-1 step
    w = {"w1": rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w2": w2,
         "b2": rng.normal(0, 1e-3, (8,)).astype(np.float32),
         "w3": rng.normal(0, 0.3, (4, 8, 1, 1)).astype(np.float32)}
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3"], ["y"], name="conv3"),
    ]
    _save_net(nodes, w, tmp_path / "f.onnx")
    ranges = {"x": (-2.5, 2.5), "c1": (-3.0, 3.0), "c2": (-2.0, 2.0), "r2": (0.0, 2.0), "y": (-3.0, 3.0)}
    q = quantize_qdq(tmp_path / "f.onnx", tmp_path / "q.onnx", TensorRanges("minmax", ranges), "cpu",
                     nodes_to_exclude=["conv2"])
    x = rng.normal(0, 1, (2, 3, 12, 6)).astype(np.float32)
    sim = fake_quant_session(q).run(None, {"x": x})[0]
    import onnxruntime as ort

    kernels = ort_session(str(q), ort.SessionOptions(), ["CPUExecutionProvider"]).run(None, {"x": x})[0]
    step = 6.0 / 255  # one u8 step of y
    assert np.abs(kernels - sim).max() <= 2 * step and (np.abs(kernels - sim) > 1e-4).mean() < 0.01
    with OnnxruntimeEmbedder(str(q), PreprocessSpec(12, 6), providers=["CPUExecutionProvider"], l2=False) as e:
        assert np.abs(e.infer(x) - sim.reshape(2, -1)).max() <= 2 * step
    assert KEEP_FLOAT_LAYERS_DISABLED_OPTIMIZERS == ("WeightBiasQuantization",)
    default = ort.InferenceSession(str(q), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    if np.abs(default - sim).max() <= 2 * step:
        pytest.skip(f"this onnxruntime {ort.__version__} does not quantize float layers itself")
    assert np.abs(default - sim).max() > 4 * step  # what the option prevents, on an ORT that has it
