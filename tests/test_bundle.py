from __future__ import annotations

import json

import pytest

from edgereid.bundle import SCHEMA_VERSION, Bundle, Manifest, staging_dir, write_manifest
from edgereid.errors import BundleError, InputError
from edgereid.preprocess import PreprocessSpec


def _manifest(files):
    return Manifest(
        arch="onnx",
        target="cpu",
        precision="fp32",
        preprocess=PreprocessSpec(height=256, width=128),
        inputs=[{"name": "images", "shape": ["N", 3, 256, 128], "dtype": "float32"}],
        outputs=[{"name": "features", "shape": ["N", 512], "dtype": "float32"}],
        files=files,
        extra={"parity": {"cosine_min": 0.99999}},
    )


def test_write_and_load_round_trip(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"x")
    write_manifest(tmp_path, _manifest({"onnx": "model.onnx"}))
    b = Bundle.load(tmp_path)
    assert b.manifest.preprocess == PreprocessSpec(height=256, width=128)
    assert b.path("onnx") == tmp_path / "model.onnx"
    assert b.manifest.extra["parity"]["cosine_min"] == 0.99999
    assert json.loads((tmp_path / "manifest.json").read_text())["schema_version"] == SCHEMA_VERSION


def test_missing_file_is_named(tmp_path):
    write_manifest(tmp_path, _manifest({"onnx": "model.onnx"}))
    with pytest.raises(BundleError, match="role 'onnx'.*missing"):
        Bundle.load(tmp_path)


def test_unknown_schema_is_refused(tmp_path):
    data = _manifest({}).to_dict()
    data["schema_version"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="unknown manifest schema_version 99"):
        Bundle.load(tmp_path)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        Bundle.load(tmp_path / "nope")
    with pytest.raises(BundleError, match="no manifest.json"):
        Bundle.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="cannot read manifest JSON"):
        Bundle.load(tmp_path)


def test_role_lookup_error_lists_roles(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"x")
    write_manifest(tmp_path, _manifest({"onnx": "model.onnx"}))
    with pytest.raises(BundleError, match=r"no file with role 'engine'.*\['onnx'\]"):
        Bundle.load(tmp_path).path("engine")


def test_staging_dir_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "bundle"
    with pytest.raises(RuntimeError):
        with staging_dir(out) as tmp:
            (tmp / "half.onnx").write_bytes(b"half")
            raise RuntimeError("export failed")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_staging_dir_refuses_non_empty_out_without_force(tmp_path):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "old").write_text("x")
    with pytest.raises(InputError, match="not empty.*--force"):
        with staging_dir(out):
            pass
    with staging_dir(out, force=True) as tmp:
        (tmp / "new").write_text("y")
    assert sorted(p.name for p in out.iterdir()) == ["new"]
