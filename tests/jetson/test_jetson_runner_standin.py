"""TrtRunner and the engine builder through a stand-in TensorRT (tests/standins.py): every False return raises."""

from __future__ import annotations

import numpy as np
import pytest
from standins import install_trt

from edgereid.errors import BackendError
from edgereid.jetson.runner import TrtRunner

W = np.random.default_rng(0).normal(size=(24, 5)).astype(np.float32)


def _tiny_onnx(path, batch="N"):
    """images (batch, 3, 4, 2) -> Flatten -> MatMul W -> emb (batch, 5)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["images"], ["flat"], name="/flatten"),
         helper.make_node("MatMul", ["flat", "W"], ["emb"], name="/fc/MatMul")],
        "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 4, 2])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, [batch, 5])],
        initializer=[numpy_helper.from_array(W, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["trt8.5-tensor-api", "trt8.4-binding-api"])
def test_runner_outputs_through_stand_in(tmp_path, monkeypatch, legacy):
    install_trt(monkeypatch, legacy=legacy)
    x = np.random.default_rng(1).normal(size=(3, 3, 4, 2)).astype(np.float32)
    with TrtRunner(_tiny_onnx(tmp_path / "e.engine")) as runner:
        assert (runner.min_batch, runner.max_batch) == (1, 8)
        out = runner.infer({"images": x})["emb"]
        calls = runner._context.calls
    np.testing.assert_allclose(out, x.reshape(3, -1) @ W, rtol=1e-5, atol=1e-5)
    if legacy:
        assert calls == ["set_binding_shape", "execute_async_v2"]
    else:
        assert calls == ["set_input_shape", "set_tensor_address", "set_tensor_address", "execute_async_v3"]


@pytest.mark.parametrize("legacy, call", [(False, "set_input_shape"), (False, "set_tensor_address"),
                                          (False, "execute_async_v3"), (True, "set_binding_shape"),
                                          (True, "execute_async_v2")])
def test_false_return_raises_instead_of_stale_outputs(tmp_path, monkeypatch, legacy, call):
    install_trt(monkeypatch, legacy=legacy, fail=[call])
    x = np.ones((2, 3, 4, 2), np.float32)
    with TrtRunner(_tiny_onnx(tmp_path / "e.engine")) as runner:
        with pytest.raises(BackendError, match=f"TensorRT {call} failed"):
            runner.infer({"images": x})


def test_static_engine_batch_range(tmp_path, monkeypatch):
    install_trt(monkeypatch)
    with TrtRunner(_tiny_onnx(tmp_path / "e.engine", batch=2)) as runner:
        assert (runner.min_batch, runner.max_batch) == (2, 2)
        out = runner.infer({"images": np.ones((2, 3, 4, 2), np.float32)})["emb"]
    np.testing.assert_allclose(out, np.ones((2, 24)) @ W, rtol=1e-5)


def test_undeserializable_engine(tmp_path, monkeypatch):
    install_trt(monkeypatch)
    bad = tmp_path / "e.engine"
    bad.write_bytes(b"not an engine")
    with pytest.raises(BackendError, match="cannot deserialize"):
        TrtRunner(bad).activate()


def _plan(tmp_path, dynamic):
    from edgereid.jetson.plan import BatchProfile, plan_engine

    _tiny_onnx(tmp_path / "model.onnx", batch="N" if dynamic else 2)
    profile = BatchProfile(1, 4, 8) if dynamic else BatchProfile(2, 2, 2)
    return plan_engine("fp16", "images", (3, 4, 2), profile, {"onnx": "model.onnx"})


@pytest.mark.parametrize("dynamic", [True, False])
def test_builder_adds_a_profile_only_for_a_dynamic_input(tmp_path, monkeypatch, dynamic):
    from edgereid.jetson.engine import build_engine

    trt = install_trt(monkeypatch)
    path = build_engine(_plan(tmp_path, dynamic), tmp_path)
    (config,) = trt.configs
    assert len(config.profiles) == (1 if dynamic else 0)
    if dynamic:
        assert config.profiles[0].shapes == {"images": ((1, 3, 4, 2), (4, 3, 4, 2), (8, 3, 4, 2))}
    assert config.flags == ["FP16"]
    assert path.read_bytes() == (tmp_path / "model.onnx").read_bytes()  # the stand-in "engine"
    assert (tmp_path / "timing.cache").read_bytes() == b"timing"
    assert config.profiling_verbosity == "DETAILED"
    from edgereid.jetson.layers import read_layer_info  # the inspector's JSON, as trtexec --exportLayerInfo

    layers = read_layer_info(tmp_path / "model.fp16.layers.json")
    assert [(layer.name, layer.precision) for layer in layers] == [("/flatten", "FP32"), ("/fc/MatMul", "FP32")]


@pytest.mark.parametrize("call", ["set_timing_cache", "add_optimization_profile", "build_serialized_network"])
def test_builder_false_returns_raise(tmp_path, monkeypatch, call):
    from edgereid.jetson.engine import build_engine

    install_trt(monkeypatch, fail=[call])
    with pytest.raises(BackendError, match="failed"):
        build_engine(_plan(tmp_path, True), tmp_path)
    assert not (tmp_path / "model.fp16.engine").exists()


def test_builder_pins_the_float_layers_to_fp16(tmp_path, monkeypatch, caplog):
    """The API builder does what build_engine.sh's --precisionConstraints/--layerPrecisions do."""
    from edgereid.jetson.engine import build_engine
    from edgereid.jetson.plan import BatchProfile, plan_engine

    _tiny_onnx(tmp_path / "model.onnx", batch=2)
    (tmp_path / "calib.cache").write_text("TRT-8502-EntropyCalibration2\n")
    plan = plan_engine("int8-cache", "images", (3, 4, 2), BatchProfile(2, 2, 2),
                       {"onnx": "model.onnx", "calib_cache": "calib.cache"}, float_layers=["/fc/MatMul", "/gone"])
    trt = install_trt(monkeypatch)
    with caplog.at_level("WARNING"):
        build_engine(plan, tmp_path)
    (config,) = trt.configs
    assert config.flags == ["FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS"]
    network_layers = {layer.name: layer.precision for layer in trt.networks[0].layers}
    assert network_layers == {"/flatten": None, "/fc/MatMul": "float16"}
    assert "/gone" in caplog.text
