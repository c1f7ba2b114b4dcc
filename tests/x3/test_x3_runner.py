"""BPU embedder backends: the board input bytes, the bundle wiring, and the library calls against
stand-ins that follow hobot_dnn's / bpu_infer_lib's documented API (no X3 here)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from edgereid.bundle import Bundle, Manifest, write_manifest
from edgereid.errors import BackendError, MissingDependencyError
from edgereid.preprocess import PreprocessSpec
from edgereid.runtime.embedder import load_embedder
from edgereid.x3.nv12 import bgr_to_nv12
from edgereid.x3.runner import BpuInferLibEmbedder, PyeasyDnnEmbedder, board_input, embedder_from_bundle

SPEC = PreprocessSpec(height=16, width=8)


def _fake_output(data: np.ndarray) -> np.ndarray:
    """A deterministic 'embedding' of the input bytes: 4 block means."""
    flat = np.asarray(data, np.float32).reshape(-1)
    return np.array([c.mean() for c in np.array_split(flat, 4)], np.float32).reshape(1, 4, 1, 1)


def _install_fake_hobot(monkeypatch, seen: list) -> None:
    class Props:
        shape = (1, 3, 16, 8)

    class Tensor:
        def __init__(self, buf):
            self.buffer = buf
            self.properties = Props()

    class Model:
        inputs = [Tensor(None)]

        def forward(self, data):
            seen.append(np.array(data))
            return [Tensor(_fake_output(data))]

    pyeasy = types.SimpleNamespace(load=lambda path: [Model()])
    pkg = types.ModuleType("hobot_dnn")
    pkg.pyeasy_dnn = pyeasy
    monkeypatch.setitem(sys.modules, "hobot_dnn", pkg)
    monkeypatch.setitem(sys.modules, "hobot_dnn.pyeasy_dnn", pyeasy)


def _install_fake_bpu_infer_lib(monkeypatch) -> None:
    class Infer:
        def __init__(self, debug):
            self.outputs = []

        def load_model(self, path):
            self.path = path

        def read_input(self, data, index):
            assert index == 0
            self.data = data

        def forward(self):
            self.result = _fake_output(self.data)

        def get_output(self):
            self.outputs = [types.SimpleNamespace(data=self.result)]

    monkeypatch.setitem(sys.modules, "bpu_infer_lib", types.SimpleNamespace(Infer=Infer))


def test_board_input_nv12_and_rgb(rng):
    crop = rng.integers(0, 256, (40, 20, 3), dtype=np.uint8)
    nv12 = board_input(crop, SPEC, "nv12")
    assert nv12.shape == (24, 8) and nv12.dtype == np.uint8
    np.testing.assert_array_equal(nv12, bgr_to_nv12(SPEC.resize(crop)))
    rgb = board_input(crop, SPEC, "rgb")
    assert rgb.shape == (1, 16, 8, 3)
    np.testing.assert_array_equal(rgb[0], SPEC.resize(crop)[..., ::-1])
    np.testing.assert_array_equal(board_input(crop, SPEC, "bgr")[0], SPEC.resize(crop))


def _bundle(tmp_path, input_type="nv12", flip=False) -> Bundle:
    (tmp_path / "model_x3.bin").write_bytes(b"\0")
    manifest = Manifest(
        arch="onnx",
        target="x3",
        precision="int8",
        preprocess=SPEC,
        inputs=[{"name": "images", "shape": [1, 3, 16, 8], "dtype": "float32"}],
        outputs=[{"name": "out", "shape": [1, 4, 1, 1], "dtype": "float32"}],
        files={"x3_bin": "model_x3.bin"},
        postprocess={"l2_normalize": True, "flip_average": flip},
        extra={"x3": {"input_type_rt": input_type}},
    )
    write_manifest(tmp_path, manifest)
    return Bundle.load(tmp_path)


def test_bundle_wiring_and_missing_library(tmp_path):
    bundle = _bundle(tmp_path, "rgb", flip=True)
    runner = load_embedder(bundle, "bpu", library="hobot_dnn")
    assert isinstance(runner, PyeasyDnnEmbedder)
    assert runner.input_type == "rgb" and runner.flip_average and runner.l2
    assert isinstance(embedder_from_bundle(bundle, library="bpu_infer_lib"), BpuInferLibEmbedder)
    if "hobot_dnn" not in sys.modules:
        with pytest.raises(MissingDependencyError, match="hobot_dnn"):
            runner.activate()


def test_pyeasy_dnn_embed_with_stand_in(tmp_path, monkeypatch, rng):
    seen: list = []
    _install_fake_hobot(monkeypatch, seen)
    crops = [rng.integers(0, 256, (30, 14, 3), dtype=np.uint8) for _ in range(3)]
    with embedder_from_bundle(_bundle(tmp_path), library="hobot_dnn") as runner:
        feats = runner.embed(crops)
        with pytest.raises(BackendError, match="embed"):
            runner.infer(np.zeros((1, 3, 16, 8), np.float32))
    assert feats.shape == (3, 4)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-6)
    assert len(seen) == 3 and seen[0].shape == (24, 8)  # NV12 bytes went to the BPU
    expected = _fake_output(bgr_to_nv12(SPEC.resize(crops[1]))).reshape(-1)
    np.testing.assert_allclose(feats[1], expected / np.linalg.norm(expected), rtol=1e-6)


def test_bpu_infer_lib_embed_with_stand_in_and_flip(tmp_path, monkeypatch, rng):
    _install_fake_bpu_infer_lib(monkeypatch)
    crop = rng.integers(0, 256, (30, 14, 3), dtype=np.uint8)
    with embedder_from_bundle(_bundle(tmp_path, "bgr", flip=True), library="bpu_infer_lib") as runner:
        feats = runner.embed([crop])
    a = _fake_output(board_input(crop, SPEC, "bgr")).reshape(-1)
    b = _fake_output(board_input(np.ascontiguousarray(crop[:, ::-1]), SPEC, "bgr")).reshape(-1)
    mean = (a + b) / 2
    np.testing.assert_allclose(feats[0], mean / np.linalg.norm(mean), rtol=1e-6)


def test_pyeasy_dnn_embedder_dequantizes_an_int_output(monkeypatch, tmp_path):
    """An output left quantized (int32 + scale_data, as rdk_model_zoo's box maps) is scaled on the host."""
    import sys
    import types

    import numpy as np

    from edgereid.preprocess import PreprocessSpec
    from edgereid.x3.runner import PyeasyDnnEmbedder

    scale = np.array([0.5, 0.25, 2.0], np.float32)
    out = types.SimpleNamespace(properties=types.SimpleNamespace(scale_data=scale))
    model = types.SimpleNamespace(
        inputs=[types.SimpleNamespace(properties=types.SimpleNamespace(shape=(1, 3, 8, 4)))], outputs=[out],
        forward=lambda b: [types.SimpleNamespace(buffer=np.array([[[[4, 4, 4]]]], np.int32))])
    dnn = types.ModuleType("hobot_dnn.pyeasy_dnn")
    dnn.load = lambda path: [model]
    monkeypatch.setitem(sys.modules, "hobot_dnn", types.ModuleType("hobot_dnn"))
    monkeypatch.setitem(sys.modules, "hobot_dnn.pyeasy_dnn", dnn)
    (tmp_path / "m.bin").write_bytes(b"x")
    with PyeasyDnnEmbedder(str(tmp_path / "m.bin"), PreprocessSpec(8, 4), l2=False) as emb:
        feats = emb.embed([np.zeros((16, 8, 3), np.uint8)])
    np.testing.assert_allclose(feats, [[2.0, 1.0, 8.0]])
