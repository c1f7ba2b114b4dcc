"""evaluate_bundle with a stand-in backend on a tiny coloured folders tree: metrics, cache, loss."""

from __future__ import annotations

import numpy as np
import pytest

from edgereid.bundle import Manifest, write_manifest
from edgereid.evaluation.reid_eval import EmbeddingCache, evaluate_bundle, format_table
from edgereid.preprocess import PreprocessSpec
from edgereid.runtime.embedder import EmbedderRunner, register_backend

CALLS = {"n": 0}


class ColourEmbedder(EmbedderRunner):
    """Embedding = mean colour of the crop (+1 so it is never zero): same colour, same person."""

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        CALLS["n"] += 1
        return batch.mean(axis=(2, 3)) + 3.0


def _colour_factory(bundle, **options):
    return ColourEmbedder(bundle.preprocess, **options)


register_backend("test-colour", _colour_factory)

# person 4 wears exactly what person 1 wears: the only source of rank-1 misses
COLOURS = {1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255), 4: (255, 0, 0)}


@pytest.fixture
def tree(tmp_path):
    import cv2

    root = tmp_path / "data"
    for pid, colour in COLOURS.items():
        for cam in (1, 2):
            (root / f"{pid:03d}").mkdir(parents=True, exist_ok=True)
            img = np.zeros((32, 16, 3), np.uint8) + np.array(colour, np.uint8)
            cv2.imwrite(str(root / f"{pid:03d}" / f"{cam:02d}_1.png"), img)
    return root


@pytest.fixture
def bundle(tmp_path):
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "model.bin").write_bytes(b"stand-in")
    write_manifest(root, Manifest(arch="onnx", target="x3", precision="int8", preprocess=PreprocessSpec(32, 16),
                                  inputs=[], outputs=[], files={"x3_bin": "model.bin"}))
    return root


def test_metrics_cache_and_no_reference(bundle, tree, tmp_path):
    CALLS["n"] = 0
    cache = tmp_path / "cache"
    rep = evaluate_bundle(bundle, tree, backends=["test-colour"], cache_dir=cache, batch_size=3)
    r = rep["backends"]["test-colour"]
    # queries 1, 2, 3 find their match first (query 1 ties with gallery 004, but the stable sort keeps
    # gallery order and 001 comes first); query 4 ties with 001, which ranks first, so its match is at
    # rank 2 -> rank-1 = 3/4, mAP = (1 + 1 + 1 + 1/2) / 4.
    assert r["rank1"] == pytest.approx(0.75)
    assert r["rank5"] == pytest.approx(1.0)
    assert r["mAP"] == pytest.approx(3.5 / 4)
    assert r["num_valid_queries"] == 4 and r["embedding_dim"] == 3
    assert rep["reference_backend"] is None and r["loss_vs_reference"] is None
    assert CALLS["n"] == 4  # 4 query crops in batches of 3 -> 2 calls, gallery the same
    assert "test-colour" in format_table(rep)

    again = evaluate_bundle(bundle, tree, backends=["test-colour"], cache_dir=cache)
    assert again["backends"]["test-colour"]["cached"] is True and CALLS["n"] == 4  # nothing re-embedded
    assert again["backends"]["test-colour"]["mAP"] == r["mAP"]

    (bundle / "model.bin").write_bytes(b"re-exported")  # another model: the cache must not be hit
    third = evaluate_bundle(bundle, tree, backends=["test-colour"], cache_dir=cache)
    assert third["backends"]["test-colour"]["cached"] is False and CALLS["n"] == 6  # batch 32: one call per side


def test_no_cache_means_no_files(bundle, tree, tmp_path):
    evaluate_bundle(bundle, tree, backends=["test-colour"], cache_dir=tmp_path / "c", use_cache=False)
    assert not (tmp_path / "c").exists()


def test_cache_roundtrip_and_key(tmp_path):
    cache = EmbeddingCache(tmp_path)
    k1 = cache.key("bundle-a", "ort", "data-x")
    assert k1 != cache.key("bundle-a", "ort-int8", "data-x") != cache.key("bundle-b", "ort", "data-x")
    q, g = np.eye(2, dtype=np.float32), np.ones((3, 2), np.float32)
    cache.save(k1, q, g)
    lq, lg = cache.load(k1)
    assert np.array_equal(lq, q) and np.array_equal(lg, g)
    assert cache.load("missing") is None
    (tmp_path / f"{k1}.npz").write_bytes(b"corrupt")
    assert cache.load(k1) is None  # a broken cache file is ignored, not fatal
    assert EmbeddingCache(None).load(k1) is None


class BrokenEmbedder(EmbedderRunner):
    def activate_impl(self) -> None:
        from edgereid.errors import MissingDependencyError

        raise MissingDependencyError("'onnxruntime' is needed but cannot be imported on this machine")


register_backend("test-broken", lambda bundle, **o: BrokenEmbedder(bundle.preprocess, **o))


def test_reference_that_cannot_load_says_how_to_skip(bundle, tree, tmp_path):
    from edgereid.errors import MissingDependencyError

    with pytest.raises(MissingDependencyError, match="--reference none"):
        evaluate_bundle(bundle, tree, backends=["test-colour"], reference="test-broken", use_cache=False)


def test_loss_against_another_backend(bundle, tree):
    rep = evaluate_bundle(bundle, tree, backends=["test-colour"], reference="test-colour", use_cache=False)
    r = rep["backends"]["test-colour"]
    assert rep["reference_backend"] == "test-colour"
    assert r["loss_vs_reference"] == {"rank1": 0.0, "rank5": 0.0, "rank10": 0.0, "mAP": 0.0}
    assert r["cosine_vs_reference"]["min"] == pytest.approx(1.0)
    assert r["loss_ci95"] == {"rank1": [0.0, 0.0], "mAP": [0.0, 0.0]}  # the same embeddings: no spread
    assert r["rank1_changed_queries"] == {"lost": 0, "gained": 0}
