from __future__ import annotations

import numpy as np
import pytest

from edgereid.bundle import Bundle, Manifest, write_manifest
from edgereid.errors import BackendError, InputError
from edgereid.preprocess import PreprocessSpec
from edgereid.runtime.embedder import EmbedderRunner, l2_normalize, load_embedder


class _Linear(EmbedderRunner):
    """A runner whose 'model' is a fixed projection, so flip-averaging can be checked by hand."""

    def __init__(self, **kwargs):
        super().__init__(PreprocessSpec(height=4, width=2, mean=(0, 0, 0), std=(1, 1, 1)), **kwargs)
        self.calls = []

    def infer_impl(self, batch):
        self.calls.append(len(batch))
        # feature = [sum of left column, sum of right column]: a flip swaps them
        return np.stack([batch[..., 0].sum(axis=(1, 2)), batch[..., 1].sum(axis=(1, 2))], axis=1)


def test_flip_average_and_l2():
    crop = np.zeros((4, 2, 3), np.uint8)
    crop[:, 0] = 255
    with _Linear(flip_average=False) as r:
        np.testing.assert_allclose(r.embed([crop]), [[1.0, 0.0]], atol=1e-6)
    with _Linear(flip_average=True) as r:
        np.testing.assert_allclose(r.embed([crop]), [[2**-0.5, 2**-0.5]], atol=1e-6)


def test_batches_are_split_at_max_batch():
    with _Linear(max_batch=3) as r:
        r.embed([np.full((4, 2, 3), 9, np.uint8)] * 7)
        assert r.calls == [3, 3, 1]


def test_infer_before_activate_is_an_error():
    with pytest.raises(BackendError, match="activate"):
        _Linear().infer(np.zeros((1, 3, 4, 2), np.float32))


def test_nan_embeddings_are_an_error():
    class _Nan(_Linear):
        def infer_impl(self, batch):
            return np.full((len(batch), 2), np.nan, np.float32)

    with _Nan() as r, pytest.raises(BackendError, match="non-finite"):
        r.embed([np.zeros((4, 2, 3), np.uint8)])


def test_l2_normalize_keeps_zero_rows():
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


@pytest.mark.assets
def test_onnxruntime_embedder_tells_people_apart(tmp_path, osnet_onnx, pku_dir, onnx_bundle):
    import cv2

    bundle = Bundle.load(onnx_bundle(tmp_path / "osnet", {"onnx": osnet_onnx}))
    pids = sorted(p.name for p in pku_dir.iterdir())[:4]
    # back view (orientation 1..8 differ by person); use the same file name in both cameras
    cam1 = [cv2.imread(str(pku_dir / pid / "01_1.png")) for pid in pids]
    cam2 = [cv2.imread(str(pku_dir / pid / "02_1.png")) for pid in pids]
    with load_embedder(bundle, "ort", threads=1) as emb:
        a, b = emb.embed(cam1), emb.embed(cam2)
    assert a.shape == (4, 512) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    sim = a @ b.T
    # the same person across cameras is more similar on average than different people
    same, diff = np.diag(sim).mean(), sim[~np.eye(4, dtype=bool)].mean()
    assert same > diff + 0.1


def test_unknown_backend_lists_valid_names(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"x")
    write_manifest(
        tmp_path,
        Manifest("onnx", "cpu", "fp32", PreprocessSpec(height=8, width=4), [], [], {"onnx": "model.onnx"}),
    )
    with pytest.raises(InputError, match=r"unknown embedder backend 'tpu'.*'ort'"):
        load_embedder(tmp_path, "tpu")
